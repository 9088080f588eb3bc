// A TCP proxy in front of a test server, to break a client's connection the ways networks do:
// cut (connections reset, new ones refused) or stalled (connections stay open, nothing passes).
import { createServer, connect, type Server, type Socket } from 'node:net';

export interface TcpProxy {
  /** host:port to give the client. */
  address: string;
  /** Resets every connection and refuses new ones until restore(). */
  cut(): void;
  /** Keeps connections open but passes nothing, either way, until restore(). */
  stall(): void;
  /** Passes traffic again (what a stall held back goes through first). */
  restore(): void;
  close(): Promise<void>;
}

export async function startTcpProxy(target: string): Promise<TcpProxy> {
  const [host, port] = [target.slice(0, target.lastIndexOf(':')), Number(target.slice(target.lastIndexOf(':') + 1))];
  let mode: 'open' | 'cut' | 'stalled' = 'open';
  const pairs = new Set<{ client: Socket; upstream: Socket; held: Array<() => void> }>();

  const forward = (pair: { held: Array<() => void> }, from: Socket, to: Socket) => {
    from.on('data', (chunk) => {
      const send = () => to.write(chunk);
      if (mode === 'stalled') pair.held.push(send);
      else send();
    });
  };

  const server: Server = createServer((client) => {
    if (mode === 'cut') {
      client.resetAndDestroy();
      return;
    }
    const upstream = connect(port, host);
    const pair = { client, upstream, held: [] as Array<() => void> };
    pairs.add(pair);
    forward(pair, client, upstream);
    forward(pair, upstream, client);
    const drop = () => {
      pairs.delete(pair);
      client.destroy();
      upstream.destroy();
    };
    for (const s of [client, upstream]) {
      s.on('error', drop);
      s.on('close', drop);
    }
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port: proxyPort } = server.address() as { port: number };

  return {
    address: `127.0.0.1:${proxyPort}`,
    cut() {
      mode = 'cut';
      for (const p of pairs) {
        p.client.resetAndDestroy();
        p.upstream.destroy();
      }
    },
    stall() {
      mode = 'stalled';
    },
    restore() {
      mode = 'open';
      for (const p of pairs) for (const send of p.held.splice(0)) send();
    },
    async close() {
      for (const p of pairs) {
        p.client.destroy();
        p.upstream.destroy();
      }
      await new Promise((resolve) => server.close(resolve));
    },
  };
}
