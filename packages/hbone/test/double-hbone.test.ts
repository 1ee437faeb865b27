import { createServer, type Server } from 'node:net';
import { SpiffeId } from '@mesh/spiffe';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import {
  type ConnectHandler,
  type ConnectRequest,
  HboneClient,
  HboneServer,
} from '../src/index.js';
import {
  App,
  CLIENT_ID,
  digestUntilEnd,
  eventually,
  fdCount,
  fdsBackTo,
  randomBytes,
  SERVER_ID,
  sha256,
  writeAll,
} from './helpers/harness.js';
import { id, TestPki } from './helpers/pki.js';
import { duplexPair } from './helpers/raw-h2.js';

const GATEWAY_ID = id('istio-system', 'eastwest-gateway');

describe('double HBONE and handed-over connections', () => {
  let pki: TestPki;
  let app: App;
  const cleanups: (() => unknown)[] = [];
  beforeAll(async () => {
    pki = new TestPki('double');
    app = new App();
    await app.listen();
  });
  afterEach(async () => {
    for (const c of cleanups.splice(0).reverse()) await c();
  });
  afterAll(async () => {
    await app.close();
    pki.dispose();
  });

  function server(identity: string, onConnect: ConnectHandler): HboneServer {
    const s = new HboneServer({ certificate: pki.issue(identity), onConnect });
    s.on('connection-error', () => {});
    cleanups.push(() => s.close({ graceMs: 100 }));
    return s;
  }

  function client(): HboneClient {
    const c = new HboneClient({ certificates: pki.issue(CLIENT_ID) });
    cleanups.push(() => c.destroy());
    return c;
  }

  async function roundTrip(
    stream: NodeJS.ReadWriteStream & import('node:stream').Duplex,
  ): Promise<void> {
    const data = randomBytes(1024 * 1024);
    const echoed = digestUntilEnd(stream);
    await writeAll(stream, data);
    expect(await echoed).toEqual({ sha256: sha256(data), length: data.length });
  }

  it('runs an end-to-end mTLS CONNECT inside a CONNECT through a gateway', async () => {
    const baseline = fdCount();
    const inner: ConnectRequest[] = [];
    const outer: ConnectRequest[] = [];
    const destination = server(SERVER_ID, (req) => {
      inner.push(req);
      return { type: 'dial', host: '127.0.0.1', port: app.port };
    });
    const { port: destPort } = await destination.listen({ host: '127.0.0.1' });
    const gateway = server(GATEWAY_ID, (req) => {
      outer.push(req);
      // The E/W gateway resolves the service hostname to the destination's HBONE port.
      return { type: 'dial', host: '127.0.0.1', port: destPort };
    });
    const { port: gwPort } = await gateway.listen({ host: '127.0.0.1' });
    const c = client();
    const tunnel = await c.connectDouble(
      {
        authority: 'echo.remote.svc.cluster.local:80',
        via: { host: '127.0.0.1', port: gwPort },
        sourceIdentity: SpiffeId.parse(CLIENT_ID),
        expectedIdentities: [GATEWAY_ID],
      },
      {
        authority: 'echo.remote.svc.cluster.local:80',
        sourceIdentity: SpiffeId.parse(CLIENT_ID),
        expectedIdentities: [SERVER_ID],
        forwardedNetwork: 'network-a',
      },
    );
    expect(tunnel.peerIdentity.toString()).toBe(SERVER_ID);
    await roundTrip(tunnel.stream);
    expect(
      outer.map((r) => [r.rawAuthority, r.peer.identity.toString(), r.headers.xForwardedNetwork]),
    ).toEqual([['echo.remote.svc.cluster.local:80', CLIENT_ID, undefined]]);
    // The destination authenticated the original client through the gateway.
    expect(
      inner.map((r) => [r.authority.host, r.peer.identity.toString(), r.headers.xForwardedNetwork]),
    ).toEqual([['echo.remote.svc.cluster.local', CLIENT_ID, 'network-a']]);
    // Inner connections are never pooled: one per tunnel, gone with it; the outer stays.
    await eventually(() => c.stats.connections === 1, 'inner connection closed');
    for (const f of cleanups.splice(0).reverse()) await f();
    await fdsBackTo(baseline);
  });

  it('serves a connection handed over as an in-memory duplex (HTTP/2 over a CONNECT stream)', async () => {
    const destination = server(SERVER_ID, () => ({
      type: 'dial',
      host: '127.0.0.1',
      port: app.port,
    }));
    const gateway = server(GATEWAY_ID, () => ({
      type: 'dial',
      host: 'in-process',
      port: 15008,
      connect: async () => {
        const [a, b] = duplexPair();
        destination.accept(a);
        return b;
      },
    }));
    const { port: gwPort } = await gateway.listen({ host: '127.0.0.1' });
    const tunnel = await client().connectDouble(
      {
        authority: 'echo.remote.svc.cluster.local:80',
        via: { host: '127.0.0.1', port: gwPort },
        sourceIdentity: SpiffeId.parse(CLIENT_ID),
        expectedIdentities: [GATEWAY_ID],
      },
      {
        authority: '10.1.1.1:80',
        sourceIdentity: SpiffeId.parse(CLIENT_ID),
        expectedIdentities: [SERVER_ID],
      },
    );
    await roundTrip(tunnel.stream);
    expect(destination.stats.tunnelsTotal).toBe(1);
  });

  it('serves connections accepted by an existing net.Server', async () => {
    const hbone = server(SERVER_ID, () => ({ type: 'dial', host: '127.0.0.1', port: app.port }));
    const listener: Server = createServer();
    hbone.attach(listener);
    await new Promise<void>((r) => listener.listen(0, '127.0.0.1', r));
    cleanups.push(() => new Promise((r) => listener.close(r)));
    const port = (listener.address() as { port: number }).port;
    const tunnel = await client().connect({
      authority: '10.1.1.1:80',
      via: { host: '127.0.0.1', port },
      sourceIdentity: SpiffeId.parse(CLIENT_ID),
      expectedIdentities: [SERVER_ID],
    });
    await roundTrip(tunnel.stream);
    expect(hbone.stats.tunnelsTotal).toBe(1);
  });
});
