import { status, type Metadata } from '@grpc/grpc-js';
import { bearer } from '../../src/client/promiseClient';
import { newId } from '../../src/domain/ids';
import type { ListKeysRequest } from '../../src/gen/apikeys/v1/key_service';
import { failure } from '../support/calls';
import { startTestServer, type TestServer } from '../support/server';

/** ListKeys' filters against the real server: alone, combined, across pages, with their tokens, and refused. */
describe('ListKeys filters', () => {
  let s: TestServer;
  let admin: Metadata;
  let adminId: string;
  /** An API key that creates keys too: created_by names it. */
  let creator: { id: string; md: Metadata };
  /** Every key made below, oldest first, with what the filters look at. */
  const made: { id: string; ws: string; by: string; env: string; scopes: string[]; state: 'active' | 'revoked' | 'archived' }[] = [];

  async function make(
    ws: string,
    env: string,
    scopes: string[],
    by: 'admin' | 'key' = 'admin',
    state: 'active' | 'revoked' | 'archived' = 'active',
  ) {
    const md = by === 'admin' ? admin : creator.md;
    const { key } = await s.clients.keys.createKey({ name: 'filtered', workspaceId: ws, environment: env, scopes }, md);
    if (state === 'revoked') await s.clients.keys.revokeKey({ id: key!.id }, admin);
    if (state === 'archived') await s.clients.keys.archiveKey({ id: key!.id }, admin);
    made.push({ id: key!.id, ws, by: by === 'admin' ? adminId : creator.id, env, scopes, state });
  }

  beforeAll(async () => {
    s = await startTestServer('list_filters', { ORG_KEY_LIMIT: '1000' });
    const orgId = newId('org');
    adminId = newId('usr');
    admin = bearer(await s.userToken({ sub: adminId, orgId }));
    const { key, secret } = await s.clients.keys.createKey({ name: 'creator', scopes: ['read', 'write', 'billing'] }, admin);
    creator = { id: key!.id, md: bearer(secret) };
    made.push({ id: key!.id, ws: '', by: adminId, env: 'live', scopes: ['read', 'write', 'billing'], state: 'active' });
    await make('ws-a', 'live', ['read']);
    await make('ws-a', 'test', ['read', 'billing']);
    await make('ws-b', 'live', ['billing'], 'key');
    await make('ws-a', 'live', ['read', 'billing'], 'key');
    await make('', 'test', ['read']);
    await make('ws-a', 'live', ['billing'], 'admin', 'revoked');
    await make('ws-a', 'live', ['read'], 'key', 'archived');
    await make('ws-b', 'test', ['read', 'billing']);
    await make('ws-a', 'live', ['billing'], 'key');
    await make('ws-a', 'live', ['read', 'billing']);
    // Another organization with the same workspace, creator-less filters' neighbours.
    const other = await s.admin();
    await s.clients.keys.createKey({ name: 'elsewhere', workspaceId: 'ws-a', scopes: ['read'] }, other.metadata);
  });
  afterAll(() => s?.stop());

  /** Every page of a listing with page size `pageSize`, as ids. */
  async function listAll(req: Partial<ListKeysRequest>, pageSize = 100, md = admin): Promise<string[][]> {
    const pages: string[][] = [];
    let pageToken = '';
    do {
      const page = await s.clients.keys.listKeys({ ...req, pageSize, pageToken }, md);
      pages.push(page.keys.map((k) => k.id));
      pageToken = page.nextPageToken;
    } while (pageToken !== '');
    return pages;
  }
  /** What a listing must return: the keys made that match, newest first. */
  const expected = (match: (k: (typeof made)[number]) => boolean, states = ['active']) =>
    made
      .filter((k) => states.includes(k.state) && match(k))
      .map((k) => k.id)
      .reverse();

  it.each<[string, Partial<ListKeysRequest>, (k: (typeof made)[number]) => boolean]>([
    ['workspace_id', { workspaceId: 'ws-a' }, (k) => k.ws === 'ws-a'],
    ['created_by a user', { createdBy: 'USER' }, (k) => k.by === adminId],
    ['created_by a key', { createdBy: 'KEY' }, (k) => k.by === creator.id],
    ['environment', { environment: 'test' }, (k) => k.env === 'test'],
    ['scope', { scope: 'billing' }, (k) => k.scopes.includes('billing')],
  ])('filters by %s alone', async (_name, filter, match) => {
    const req = {
      ...filter,
      createdBy: filter.createdBy === 'USER' ? adminId : filter.createdBy === 'KEY' ? creator.id : filter.createdBy,
    };
    const ids = (await listAll(req)).flat();
    expect(ids).toEqual(expected(match));
    expect(ids.length).toBeGreaterThan(0);
  });

  it('combines filters with each other and with include_revoked, include_archived and unused_since (AND)', async () => {
    const wsLiveBilling = (k: (typeof made)[number]) => k.ws === 'ws-a' && k.env === 'live' && k.scopes.includes('billing');
    expect((await listAll({ workspaceId: 'ws-a', environment: 'live', scope: 'billing' })).flat()).toEqual(expected(wsLiveBilling));
    expect((await listAll({ workspaceId: 'ws-a', environment: 'live', scope: 'billing', includeRevoked: true })).flat()).toEqual(
      expected(wsLiveBilling, ['active', 'revoked']),
    );
    const byKeyInWs = (k: (typeof made)[number]) => k.ws === 'ws-a' && k.by === creator.id;
    expect((await listAll({ workspaceId: 'ws-a', createdBy: creator.id, includeArchived: true })).flat()).toEqual(
      expected(byKeyInWs, ['active', 'archived']),
    );
    // Nothing was used: unused_since keeps every key the filters let through.
    expect((await listAll({ workspaceId: 'ws-b', unusedSince: new Date() })).flat()).toEqual(expected((k) => k.ws === 'ws-b'));
    expect((await listAll({ workspaceId: 'ws-b', environment: 'live', scope: 'read' })).flat()).toEqual([]);
  });

  it('pages through a filtered listing: every match once, newest first', async () => {
    const pages = await listAll({ workspaceId: 'ws-a', includeRevoked: true, includeArchived: true }, 2);
    expect(pages.map((p) => p.length)).toEqual([2, 2, 2, 1]);
    expect(pages.flat()).toEqual(expected((k) => k.ws === 'ws-a', ['active', 'revoked', 'archived']));
    const unused = await listAll({ scope: 'billing', unusedSince: new Date() }, 2);
    expect(unused.flat()).toEqual(expected((k) => k.scopes.includes('billing')));
  });

  it('binds a page token to the filters it was issued with: with any other, INVALID_PAGE_TOKEN', async () => {
    const first = await s.clients.keys.listKeys({ workspaceId: 'ws-a', pageSize: 1 }, admin);
    const unfiltered = await s.clients.keys.listKeys({ pageSize: 1 }, admin);
    expect((await s.clients.keys.listKeys({ workspaceId: 'ws-a', pageSize: 1, pageToken: first.nextPageToken }, admin)).keys).toHaveLength(
      1,
    );
    for (const req of [
      { workspaceId: 'ws-b', pageToken: first.nextPageToken },
      { pageToken: first.nextPageToken },
      { workspaceId: 'ws-a', scope: 'read', pageToken: first.nextPageToken },
      { workspaceId: 'ws-a', environment: 'live', pageToken: first.nextPageToken },
      { workspaceId: 'ws-a', createdBy: adminId, pageToken: first.nextPageToken },
      { workspaceId: 'ws-a', pageToken: unfiltered.nextPageToken },
    ]) {
      expect(await failure(s.clients.keys.listKeys({ pageSize: 1, ...req }, admin))).toEqual({
        code: status.INVALID_ARGUMENT,
        reason: 'INVALID_PAGE_TOKEN',
        domain: 'apikeys.v1',
        fields: ['page_token:INVALID_PAGE_TOKEN'],
      });
    }
  });

  it('refuses malformed filters, naming each field', async () => {
    expect(
      await failure(
        s.clients.keys.listKeys({ workspaceId: 'ws a', createdBy: newId('org'), environment: 'prod', scope: 'Billing' }, admin),
      ),
    ).toEqual({
      code: status.INVALID_ARGUMENT,
      reason: 'INVALID_WORKSPACE_ID',
      domain: 'apikeys.v1',
      fields: ['workspace_id:INVALID_WORKSPACE_ID', 'created_by:INVALID_ID', 'environment:INVALID_ENVIRONMENT', 'scope:INVALID_SCOPES'],
    });
    expect(await failure(s.clients.keys.listKeys({ createdBy: 'usr_123' }, admin))).toMatchObject({ fields: ['created_by:INVALID_ID'] });
  });

  it('lets an API key filter by anything, as it may list every key of its organization', async () => {
    const { secret } = await s.clients.keys.createKey(
      { name: 'reader', scopes: ['read'], workspaceId: 'ws-b', environment: 'test' },
      admin,
    );
    // Keys outside its workspace and environment, with scopes it lacks: listed as without filters.
    const ids = (await listAll({ workspaceId: 'ws-a', scope: 'billing' }, 100, bearer(secret))).flat();
    expect(ids).toEqual(expected((k) => k.ws === 'ws-a' && k.scopes.includes('billing')));
  });
});
