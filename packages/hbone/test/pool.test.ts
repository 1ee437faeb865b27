import { subscribe, unsubscribe } from 'node:diagnostics_channel';
import { type CertificateSource, SpiffeId, type WorkloadCertificate } from '@mesh/spiffe';
import { afterEach, describe, expect, it } from 'vitest';
import { cachedSecureContext, HboneClient, HboneError } from '../src/index.js';
import {
  App,
  CLIENT_ID,
  digestUntilEnd,
  type Env,
  eventually,
  makeEnv,
  SERVER_ID,
} from './helpers/harness.js';

describe('HBONE client pool', () => {
  let env: Env | undefined;
  let app: App | undefined;
  afterEach(async () => {
    await env?.close();
    await app?.close();
    env = undefined;
    app = undefined;
  });

  it('spreads 1,000 concurrent tunnels over 10 connections of at most 100 streams, dialling one at a time', {
    timeout: 90_000,
  }, async () => {
    app = new App();
    const appPort = await app.listen();
    env = await makeEnv(() => ({ type: 'dial', host: '127.0.0.1', port: appPort }));
    const sessions: string[] = [];
    env.server.on('session', (s) => sessions.push(s.peer.identity.toString()));
    const origConnect = env.connectOpts('127.0.0.1:1');
    const tunnels = await Promise.all(
      Array.from({ length: 1000 }, (_, i) =>
        env!.client.connect({
          ...origConnect,
          authority: `127.0.0.1:${appPort}`,
          baggage: `i=${i}`,
        }),
      ),
    );
    expect(tunnels).toHaveLength(1000);
    const stats = env.client.stats;
    expect(stats.connections).toBe(10);
    expect(stats.streams).toBe(1000);
    expect(stats.dialsTotal).toBe(10);
    expect(sessions).toHaveLength(10);
    expect(env.server.stats.tunnels).toBe(1000);
    // Every tunnel really carries its own bytes.
    const echoes = tunnels.map((t, i) => {
      const done = digestUntilEnd(t.stream);
      t.stream.end(`tunnel ${i}`);
      return done;
    });
    const lengths = (await Promise.all(echoes)).map((e) => e.length);
    expect(lengths).toEqual(tunnels.map((_, i) => `tunnel ${i}`.length));
    await eventually(() => env!.client.stats.streams === 0, 'streams released');
    expect(env.client.stats.connections).toBe(10);
  });

  it('never opens more streams on a connection than the server allows', async () => {
    app = new App();
    const appPort = await app.listen();
    env = await makeEnv(() => ({ type: 'dial', host: '127.0.0.1', port: appPort }), {
      server: { maxConcurrentStreams: 5 },
    });
    const tunnels = await Promise.all(
      Array.from({ length: 12 }, () =>
        env!.client.connect(env!.connectOpts(`127.0.0.1:${appPort}`)),
      ),
    );
    expect(env.client.stats.connections).toBe(3);
    expect(env.server.stats.sessions).toBe(3);
    for (const t of tunnels) t.destroy();
  });

  it('keys connections by source IP and by expected identities', async () => {
    app = new App();
    const appPort = await app.listen();
    const remotes: string[] = [];
    env = await makeEnv((req) => {
      remotes.push(req.remoteAddress);
      return { type: 'dial', host: '127.0.0.1', port: appPort };
    });
    const base = env.connectOpts(`127.0.0.1:${appPort}`);
    await env.client.connect(base);
    await env.client.connect(base);
    expect(env.client.stats.connections).toBe(1);
    await env.client.connect({ ...base, sourceIp: '127.0.0.2' });
    expect(env.client.stats.connections).toBe(2);
    await env.client.connect({
      ...base,
      expectedIdentities: [SERVER_ID, 'spiffe://cluster.local/ns/dst/sa/other'],
    });
    expect(env.client.stats.connections).toBe(3);
    expect(remotes).toEqual(['127.0.0.1', '127.0.0.1', '127.0.0.2', '127.0.0.1']);
  });

  it('never reuses a connection that received GOAWAY', async () => {
    app = new App();
    const appPort = await app.listen();
    env = await makeEnv(() => ({ type: 'dial', host: '127.0.0.1', port: appPort }));
    const opts = env.connectOpts(`127.0.0.1:${appPort}`);
    const first = await env.client.connect(opts);
    const draining = env.server.close({ graceMs: 5000 });
    await eventually(() => env!.client.stats.connections === 0, 'GOAWAY seen by the pool');
    // The old tunnel still works during the grace period...
    const echoed = digestUntilEnd(first.stream);
    first.stream.end('still here');
    expect((await echoed).length).toBe('still here'.length);
    // ...but a new tunnel needs a new connection, which the closed listener refuses.
    const err = await env.client.connect(opts).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(HboneError);
    expect((err as HboneError).code).toBe('ERR_HBONE_DIAL_FAILED');
    expect(env.client.stats.dialsTotal).toBe(2);
    await draining;
  });

  it('releases a connection after the idle timeout and dials anew afterwards', async () => {
    app = new App();
    const appPort = await app.listen();
    env = await makeEnv(() => ({ type: 'dial', host: '127.0.0.1', port: appPort }), {
      client: { idleTimeoutMs: 150 },
    });
    const published: string[] = [];
    const onOpen = (m: unknown) => published.push(`open ${(m as { nextHop: string }).nextHop}`);
    const onClose = (m: unknown) => published.push(`close ${(m as { nextHop: string }).nextHop}`);
    subscribe('mesh:hbone:client-connection-open', onOpen);
    subscribe('mesh:hbone:client-connection-close', onClose);
    try {
      const opts = env.connectOpts(`127.0.0.1:${appPort}`);
      const t = await env.client.connect(opts);
      const done = digestUntilEnd(t.stream);
      t.stream.end('x');
      await done;
      await eventually(() => env!.client.stats.connections === 0, 'idle release');
      await eventually(() => env!.server.stats.sessions === 0, 'server saw the close');
      await env.client.connect(opts);
      expect(env.client.stats.dialsTotal).toBe(2);
      const hop = `127.0.0.1:${env.port}`;
      expect(published).toEqual([`open ${hop}`, `close ${hop}`, `open ${hop}`]);
    } finally {
      unsubscribe('mesh:hbone:client-connection-open', onOpen);
      unsubscribe('mesh:hbone:client-connection-close', onClose);
    }
  });

  it('fails a dial that does not complete in time with a hint about port 15008, for every waiter', async () => {
    env = await makeEnv(() => ({ type: 'refuse', status: 503 }));
    const client = new HboneClient({
      certificates: env.clientCert,
      dialTimeoutMs: 200,
      createSocket: ({ signal }) =>
        new Promise((_, reject) => signal.addEventListener('abort', () => reject(signal.reason))),
    });
    try {
      const opts = {
        authority: '10.0.0.1:80',
        via: { host: '10.255.255.1' },
        sourceIdentity: SpiffeId.parse(CLIENT_ID),
        expectedIdentities: [SERVER_ID],
      };
      const errs = await Promise.all([
        client.connect(opts).catch((e: unknown) => e),
        client.connect(opts).catch((e: unknown) => e),
        client.connect(opts).catch((e: unknown) => e),
      ]);
      for (const e of errs) {
        expect(e).toBeInstanceOf(HboneError);
        expect((e as HboneError).code).toBe('ERR_HBONE_DIAL_TIMEOUT');
        expect((e as HboneError).message).toMatch(/NetworkPolicy.*15008/);
      }
      expect(client.stats.dialsTotal).toBe(1);
    } finally {
      client.destroy();
    }
  });

  it('rejects with the signal reason when the caller aborts while waiting', async () => {
    const env2 = await makeEnv(() => ({ type: 'refuse', status: 503 }));
    env = env2;
    const client = new HboneClient({
      certificates: env2.clientCert,
      createSocket: () => new Promise(() => {}),
      dialTimeoutMs: 60_000,
    });
    try {
      const ac = new AbortController();
      const p = client.connect({ ...env2.connectOpts('10.0.0.1:80'), signal: ac.signal });
      const reason = new Error('caller gave up');
      ac.abort(reason);
      await expect(p).rejects.toBe(reason);
    } finally {
      client.destroy();
    }
  });

  it('asks the certificate source per source identity and caches one TLS context per certificate', async () => {
    app = new App();
    const appPort = await app.listen();
    const serials: string[] = [];
    env = await makeEnv((req) => {
      serials.push(req.peer.certificate.serialNumber.toLowerCase());
      return { type: 'dial', host: '127.0.0.1', port: appPort };
    });
    let current: WorkloadCertificate = env.clientCert;
    const asked: string[] = [];
    const source: CertificateSource = {
      async getCertificate(identity) {
        asked.push(identity.toString());
        return current;
      },
    };
    const client = new HboneClient({ certificates: source, idleTimeoutMs: 50 });
    try {
      const opts = env.connectOpts(`127.0.0.1:${appPort}`);
      (await client.connect(opts)).destroy();
      expect(cachedSecureContext(current)).toBe(cachedSecureContext(current));
      await eventually(() => client.stats.connections === 0, 'idle release');
      // Rotation: the source now returns a new certificate object.
      current = env.pki.issue(CLIENT_ID);
      (await client.connect(opts)).destroy();
      expect(asked).toEqual([CLIENT_ID, CLIENT_ID]);
      expect(serials).toEqual([env.clientCert.serialNumber, current.serialNumber]);
    } finally {
      client.destroy();
    }
  });
});
