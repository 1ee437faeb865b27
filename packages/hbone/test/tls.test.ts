import { spawn } from 'node:child_process';
import type { AddressInfo } from 'node:net';
import { createServer as createTlsServer, connect as tlsConnect } from 'node:tls';
import { type CertificateSource, SpiffeId, type WorkloadCertificate } from '@mesh/spiffe';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { HboneClient, HboneError, HboneServer } from '../src/index.js';
import {
  App,
  CLIENT_ID,
  digestUntilEnd,
  type Env,
  eventually,
  fdCount,
  fdsBackTo,
  makeEnv,
  SERVER_ID,
} from './helpers/harness.js';
import { TestPki } from './helpers/pki.js';

function sClient(args: string[], holdMs = 600): Promise<string> {
  return new Promise((resolve) => {
    const p = spawn('openssl', ['s_client', '-no_ign_eof', ...args], {
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    let out = '';
    p.stdout.on('data', (c) => {
      out += c;
    });
    p.stderr.on('data', (c) => {
      out += c;
    });
    // Keep stdin open briefly so s_client reads what the server sends after the handshake.
    setTimeout(() => p.stdin.end(), holdMs);
    p.on('close', () => resolve(out));
  });
}

describe('HBONE mutual TLS', () => {
  let pki: TestPki;
  let app: App;
  let appPort: number;
  let env: Env;
  let errors: HboneError[];
  beforeAll(async () => {
    pki = new TestPki('tls');
    app = new App();
    appPort = await app.listen();
  });
  afterAll(async () => {
    await app.close();
    pki.dispose();
  });
  afterEach(async () => {
    await env?.close();
  });

  async function start(opts: Parameters<typeof makeEnv>[1] = {}) {
    env = await makeEnv(() => ({ type: 'dial', host: '127.0.0.1', port: appPort }), {
      pki,
      ...opts,
    });
    errors = [];
    env.server.on('connection-error', (e) => errors.push(e));
    return env;
  }

  async function clientWith(cert: WorkloadCertificate, expected = [SERVER_ID]) {
    const client = new HboneClient({ certificates: cert });
    try {
      return await client
        .connect({
          ...env.connectOpts(`127.0.0.1:${appPort}`),
          sourceIdentity: cert.identity,
          expectedIdentities: expected,
        })
        .then(
          async (t) => {
            // In TLS 1.3 the server judges the client cert after the client's handshake is
            // done; a rejected client sees the connection drop on first use.
            const echoed = digestUntilEnd(t.stream).catch((e: unknown) => e);
            t.stream.end('hello');
            return { tunnel: t, echoed: await echoed };
          },
          (e: unknown) => ({ error: e as HboneError }),
        );
    } finally {
      client.destroy();
    }
  }

  it('accepts a client of its own trust domain and reports its identity', async () => {
    await start();
    const r = await clientWith(env.clientCert);
    expect('tunnel' in r && r.echoed).toEqual({ sha256: expect.any(String), length: 5 });
  });

  it.each([
    [
      'another trust domain',
      () => pki.issue('spiffe://other.domain/ns/src/sa/client'),
      'ERR_HBONE_PEER_TRUST_DOMAIN',
    ],
    [
      'no SPIFFE URI SAN',
      () => pki.issue(null, { dns: 'client.example', identity: CLIENT_ID }),
      'ERR_HBONE_PEER_TRUST_DOMAIN',
    ],
    ['an expired certificate', () => pki.issue(CLIENT_ID, { expired: true }), 'ERR_HBONE_TLS'],
    ['a chain from an unknown CA', () => new TestPki('other').issue(CLIENT_ID), 'ERR_HBONE_TLS'],
  ])('rejects a client with %s without disturbing other clients', async (_name, make, code) => {
    await start();
    const baseline = fdCount();
    const bad = make();
    const r = await clientWith(bad);
    expect(
      'tunnel' in r &&
        !(r.echoed instanceof Error) &&
        (r.echoed as { length: number }).length === 5,
    ).toBe(false);
    await eventually(() => errors.some((e) => e.code === code), `server error ${code}`);
    expect(env.server.stats.tunnelsTotal).toBe(0);
    const good = await clientWith(env.clientCert);
    expect('tunnel' in good && good.echoed).toMatchObject({ length: 5 });
    await fdsBackTo(baseline);
  });

  it('rejects a TLS client that presents no certificate', async () => {
    await start();
    const baseline = fdCount();
    const closed = await new Promise<boolean>((resolve) => {
      const s = tlsConnect({
        host: '127.0.0.1',
        port: env.port,
        ca: [...env.serverCert.roots],
        ALPNProtocols: ['h2'],
        rejectUnauthorized: false,
      });
      s.on('error', () => {});
      s.on('secureConnect', () => s.write('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n'));
      s.on('close', () => resolve(true));
    });
    expect(closed).toBe(true);
    await eventually(() => errors.some((e) => e.code === 'ERR_HBONE_TLS'), 'TLS error reported');
    await fdsBackTo(baseline);
  });

  it('refuses a server whose certificate is not one of the expected identities', async () => {
    await start();
    const r = await clientWith(env.clientCert, ['spiffe://cluster.local/ns/dst/sa/someone-else']);
    expect('error' in r && r.error).toBeInstanceOf(HboneError);
    expect('error' in r && r.error.code).toBe('ERR_HBONE_PEER_IDENTITY');
    expect(env.server.stats.tunnelsTotal).toBe(0);
  });

  it('refuses a server that only speaks TLS 1.2', async () => {
    await start();
    const legacy = createTlsServer({
      key: env.serverCert.privateKey,
      cert: [env.serverCert.leaf, ...env.serverCert.intermediates].join(''),
      maxVersion: 'TLSv1.2',
      ALPNProtocols: ['h2'],
    });
    legacy.on('tlsClientError', () => {});
    await new Promise<void>((r) => legacy.listen(0, '127.0.0.1', r));
    const client = new HboneClient({ certificates: env.clientCert });
    try {
      const err = await client
        .connect({
          ...env.connectOpts('10.0.0.1:80'),
          via: { host: '127.0.0.1', port: (legacy.address() as AddressInfo).port },
        })
        .catch((e: unknown) => e);
      expect(err).toBeInstanceOf(HboneError);
      expect((err as HboneError).code).toBe('ERR_HBONE_TLS');
    } finally {
      client.destroy();
      await new Promise((r) => legacy.close(r));
    }
  });

  it('refuses a server whose chain does not lead to our roots', async () => {
    const other = new TestPki('untrusted');
    try {
      await start({ pki: other });
      const r = await clientWith(pki.issue(CLIENT_ID));
      expect('error' in r && r.error.code).toBe('ERR_HBONE_TLS');
    } finally {
      other.dispose();
    }
  });

  it('speaks only TLS 1.3 with AES-GCM, ALPN h2, and requires a client certificate (openssl s_client)', {
    timeout: 30_000,
  }, async () => {
    await start();
    const files = pki.writeFiles(env.clientCert, 'sclient');
    const target = ['-connect', `127.0.0.1:${env.port}`, '-CAfile', files.ca, '-alpn', 'h2'];
    const tls12 = await sClient([...target, '-tls1_2']);
    expect(tls12).toMatch(
      /alert protocol version|no protocols available|wrong version number|unsupported protocol/i,
    );
    const chacha = await sClient([
      ...target,
      '-tls1_3',
      '-ciphersuites',
      'TLS_CHACHA20_POLY1305_SHA256',
    ]);
    expect(chacha).toMatch(/handshake failure|no shared cipher/i);
    const noCert = await sClient([...target, '-tls1_3']);
    expect(noCert).toMatch(/certificate required|alert number 116/i);
    const ok = await sClient([...target, '-tls1_3', '-cert', files.chain, '-key', files.key]);
    expect(ok).toMatch(/TLSv1\.3/);
    expect(ok).toMatch(/TLS_AES_256_GCM_SHA384/);
    expect(ok).toMatch(/ALPN protocol: h2/);
    expect(ok).not.toMatch(/certificate required/);
  });

  it('rotates its certificate for new handshakes without dropping live tunnels', async () => {
    await start();
    const client = new HboneClient({ certificates: env.clientCert, idleTimeoutMs: 60_000 });
    try {
      const live = await client.connect(env.connectOpts(`127.0.0.1:${appPort}`));
      expect(live.peerCertificate.serialNumber.toLowerCase()).toBe(env.serverCert.serialNumber);
      const rotated = pki.issue(SERVER_ID);
      env.server.setCertificate(rotated);
      const fresh = await env.client.connect(env.connectOpts(`127.0.0.1:${appPort}`));
      expect(fresh.peerCertificate.serialNumber.toLowerCase()).toBe(rotated.serialNumber);
      const echoed = digestUntilEnd(live.stream);
      live.stream.end('old tunnel still alive');
      expect((await echoed).length).toBe('old tunnel still alive'.length);
      fresh.destroy();
    } finally {
      client.destroy();
    }
  });

  it('follows a certificate source: waits for the first certificate and picks up rotations', async () => {
    let current = pki.issue(SERVER_ID);
    const source: CertificateSource = { getCertificate: async () => current };
    const server = new HboneServer({
      certificate: { source, identity: SpiffeId.parse(SERVER_ID), refreshIntervalMs: 50 },
      onConnect: () => ({ type: 'dial', host: '127.0.0.1', port: appPort }),
    });
    const client = new HboneClient({ certificates: pki.issue(CLIENT_ID), idleTimeoutMs: 10 });
    try {
      const { port } = await server.listen({ host: '127.0.0.1' });
      const opts = {
        authority: `127.0.0.1:${appPort}`,
        via: { host: '127.0.0.1', port },
        sourceIdentity: SpiffeId.parse(CLIENT_ID),
        expectedIdentities: [SERVER_ID],
      };
      const first = await client.connect(opts);
      expect(first.peerCertificate.serialNumber.toLowerCase()).toBe(current.serialNumber);
      first.destroy();
      const old = current;
      current = pki.issue(SERVER_ID);
      await eventually(() => server.certificate !== old, 'rotation picked up');
      await eventually(() => client.stats.connections === 0, 'idle release');
      const second = await client.connect(opts);
      expect(second.peerCertificate.serialNumber.toLowerCase()).toBe(current.serialNumber);
      second.destroy();
    } finally {
      client.destroy();
      server.destroy();
    }
  });
});
