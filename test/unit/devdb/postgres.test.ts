// How the private PostgreSQL cluster is found and started: pure argument building, no processes.
import { ephemeralDatabaseChoice } from '../../../src/devdb/ephemeralDatabase';
import { findPostgresBinDir, initdbArgs, missingPostgresMessage, postgresArgs, unprivilegedUser } from '../../../src/devdb/postgres';

const PROGRAMS = ['initdb', 'postgres', 'pg_isready', 'createdb'];

/** A file system of real paths, with links (link → target) in front of some of them. */
function files(real: string[], links: Record<string, string> = {}) {
  const set = new Set(real);
  return (file: string) => {
    const target = links[file] ?? file;
    return set.has(target) ? target : null;
  };
}
const installed = (dir: string) => PROGRAMS.map((p) => `${dir}/${p}`);

describe('findPostgresBinDir', () => {
  const debian =
    (...versions: string[]) =>
    () =>
      versions;

  it("follows a PATH entry's initdb link to the installation, which holds the other programs", () => {
    const realPath = files(installed('/usr/lib/postgresql/15/bin'), {
      '/usr/local/bin/initdb': '/usr/lib/postgresql/15/bin/initdb',
    });
    expect(findPostgresBinDir({ PATH: '/usr/bin:/usr/local/bin' }, realPath, debian())).toBe('/usr/lib/postgresql/15/bin');
  });

  it("takes Debian's newest version when PATH has none", () => {
    const realPath = files([
      ...installed('/usr/lib/postgresql/9.6/bin'),
      ...installed('/usr/lib/postgresql/15/bin'),
      ...installed('/usr/lib/postgresql/16/bin'),
    ]);
    expect(findPostgresBinDir({ PATH: '/usr/bin' }, realPath, debian('9.6', '16', '15', 'README'))).toBe('/usr/lib/postgresql/16/bin');
  });

  it('skips an installation that lacks a program (a client-only package)', () => {
    const realPath = files([
      '/usr/lib/postgresql/16/bin/pg_isready',
      '/usr/lib/postgresql/16/bin/createdb',
      ...installed('/usr/lib/postgresql/15/bin'),
    ]);
    expect(findPostgresBinDir({}, realPath, debian('16', '15'))).toBe('/usr/lib/postgresql/15/bin');
  });

  it('uses POSTGRESQL_BIN_DIR alone when it is set', () => {
    const realPath = files([...installed('/opt/pg/bin'), ...installed('/usr/lib/postgresql/15/bin')]);
    expect(findPostgresBinDir({ POSTGRESQL_BIN_DIR: '/opt/pg/bin' }, realPath, debian('15'))).toBe('/opt/pg/bin');
    expect(findPostgresBinDir({ POSTGRESQL_BIN_DIR: '/elsewhere' }, realPath, debian('15'))).toBeNull();
  });

  it('answers null with nothing installed, and the message says how to install it', () => {
    expect(findPostgresBinDir({ PATH: '/usr/bin' }, files([]), debian())).toBeNull();
    expect(missingPostgresMessage()).toContain('apt-get install postgresql');
  });
});

describe('cluster arguments', () => {
  it('initdb: trust authentication for the postgres superuser, UTF-8, no fsync while initialising', () => {
    expect(initdbArgs('/tmp/x/data')).toEqual([
      '-D',
      '/tmp/x/data',
      '-U',
      'postgres',
      '-A',
      'trust',
      '-E',
      'UTF8',
      '--locale=C',
      '--no-sync',
    ]);
  });

  it('postgres: loopback TCP on the given port and the unix socket in our own directory', () => {
    expect(postgresArgs({ dataDir: '/tmp/x/data', port: 54321, socketDir: '/tmp/x/socket' })).toEqual([
      '-D',
      '/tmp/x/data',
      '-p',
      '54321',
      '-h',
      '127.0.0.1',
      '-k',
      '/tmp/x/socket',
    ]);
  });
});

describe('unprivilegedUser', () => {
  const passwd = 'root:x:0:0:root:/root:/bin/bash\nnobody:x:65000:65001:nobody:/nonexistent:/usr/sbin/nologin\n';

  it("as root: nobody's uid and gid from passwd", () => {
    expect(unprivilegedUser(0, passwd)).toEqual({ uid: 65000, gid: 65001 });
  });

  it('as root without a nobody entry: the conventional 65534', () => {
    expect(unprivilegedUser(0, 'root:x:0:0:root:/root:/bin/bash\n')).toEqual({ uid: 65534, gid: 65534 });
  });

  it('as any other user: runs as that user', () => {
    expect(unprivilegedUser(1000, passwd)).toBeUndefined();
  });
});

describe('ephemeralDatabaseChoice', () => {
  it('defaults to FerretDB on SQLite, names PostgreSQL, refuses anything else', () => {
    expect(ephemeralDatabaseChoice(undefined)).toBe('ferretdb-sqlite');
    expect(ephemeralDatabaseChoice('')).toBe('ferretdb-sqlite');
    expect(ephemeralDatabaseChoice('ferretdb-postgresql')).toBe('ferretdb-postgresql');
    expect(() => ephemeralDatabaseChoice('postgres')).toThrow(/ferretdb-sqlite, ferretdb-postgresql/);
  });
});
