import { execFile } from 'node:child_process';
import { readdirSync } from 'node:fs';
import { rm, writeFile } from 'node:fs/promises';
import { createServer, type Server as NetServer } from 'node:net';
import { join } from 'node:path';
import {
  createCsr,
  IstioCaClient,
  type IstioCaClientOptions,
  IstioCaServer,
  LocalCa,
  SpiffeError,
  SpiffeId,
  X509Svid,
} from '@mesh/spiffe';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { openssl, tempDir } from './helpers/openssl.js';
import { startRogueCa } from './helpers/rogue-ca.js';

const DEMO = SpiffeId.parse('spiffe://cluster.local/ns/default/sa/demo');
const OTHER = SpiffeId.parse('spiffe://cluster.local/ns/default/sa/other');
const NODE_TOKEN = 'node-agent-token';
const WORKLOAD_TOKEN = 'workload-token';

let ca: LocalCa;
let server: IstioCaServer;
let dir: string;
const seenHeaders: Record<string, string>[] = [];
const clients: IstioCaClient[] = [];
const cleanups: (() => void)[] = [];

function client(options: Partial<IstioCaClientOptions> = {}): IstioCaClient {
  const c = new IstioCaClient({
    address: server.address,
    rootCert: server.rootCert,
    token: NODE_TOKEN,
    ...options,
  });
  clients.push(c);
  return c;
}

async function errorOf(p: Promise<unknown>): Promise<SpiffeError> {
  const err = await p.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(SpiffeError);
  return err as SpiffeError;
}

function openFds(): number {
  return readdirSync('/proc/self/fd').length;
}

beforeAll(async () => {
  dir = await tempDir('spiffe-grpc-');
  ca = LocalCa.create();
  server = new IstioCaServer({
    ca,
    tokens: {
      [NODE_TOKEN]: { name: 'istio-system/ztunnel', mayImpersonate: true },
      [WORKLOAD_TOKEN]: { name: 'default/demo', identity: DEMO },
    },
    authenticate: ({ headers }) => {
      seenHeaders.push(headers);
      return undefined;
    },
  });
  await server.listen();
});

afterEach(() => {
  for (const c of clients.splice(0)) c.close();
  for (const fn of cleanups.splice(0)) fn();
});

afterAll(async () => {
  await server.close();
  await rm(dir, { recursive: true, force: true });
});

describe('IstioCaClient against IstioCaServer over TLS', () => {
  it('gets a certificate for an impersonated identity that openssl verifies', async () => {
    const cert = await client().issue(DEMO, { ttlSeconds: 600 });
    expect(cert.identity.equals(DEMO)).toBe(true);
    expect(cert.roots).toEqual(ca.roots);
    expect(cert.notAfter.getTime() - cert.notBefore.getTime()).toBe(660_000);
    const res = await openssl(['verify', '-CAfile', '{dir}/root.pem', '{dir}/leaf.pem'], {
      'root.pem': cert.roots.join(''),
      'leaf.pem': cert.leaf,
    });
    expect(res.stdout).toMatch(/OK/);
    expect(X509Svid.parse(cert.leaf).verify(ca.trustBundle).identity.equals(DEMO)).toBe(true);
  });

  it('verifies the CA with a root file path', async () => {
    const rootFile = join(dir, 'root-cert.pem');
    await writeFile(rootFile, server.rootCert);
    const cert = await client({ rootCert: rootFile }).issue(DEMO);
    expect(cert.identity.equals(DEMO)).toBe(true);
  });

  it('fails TLS with SYSTEM roots, since a private CA is not a public one', async () => {
    const err = await errorOf(client({ rootCert: 'SYSTEM' }).issue(DEMO));
    expect(err.code).toBe('ERR_SPIFFE_CA_UNAVAILABLE');
  });

  it('accepts an alternate hostname for the serving certificate', async () => {
    const cert = await client({ altHostname: 'istiod.istio-system.svc' }).issue(DEMO);
    expect(cert.identity.equals(DEMO)).toBe(true);
  });

  it('sends clusterid and extra headers', async () => {
    seenHeaders.length = 0;
    await errorOf(
      client({ token: 'unknown', clusterId: 'east', headers: { 'X-Extra': 'yes' } }).issue(DEMO),
    );
    expect(seenHeaders.at(-1)).toMatchObject({
      authorization: 'Bearer unknown',
      clusterid: 'east',
      'x-extra': 'yes',
    });
  });

  it('puts csr=1, validity_duration=3 and metadata(4).ImpersonatedIdentity on the wire (protoc --decode_raw)', async () => {
    let raw: Buffer | undefined;
    const rogue = await startRogueCa(ca, (req, bytes) => {
      raw = bytes;
      return { certChain: ca.signCsr(req.csr) };
    });
    cleanups.push(rogue.close);
    await client({ address: rogue.address, ttlSeconds: 3600 }).issue(DEMO);
    // Field numbers straight from the bytes, independent of our .proto file.
    const decoded = await new Promise<string>((resolve, reject) => {
      const child = execFile('protoc', ['--decode_raw'], (err, stdout) =>
        err ? reject(err) : resolve(stdout),
      );
      child.stdin!.end(raw);
    });
    expect(decoded).toMatch(/^1: "-----BEGIN CERTIFICATE REQUEST-----/m);
    expect(decoded).toMatch(/^3: 3600$/m);
    expect(decoded).not.toMatch(/^2: /m);
    // Struct{ fields(1): map entry { key(1), value(2): Value{ string_value(3) } } }
    expect(decoded).toMatch(
      /^4 \{\s+1 \{\s+1: "ImpersonatedIdentity"\s+2 \{\s+3: "spiffe:\/\/cluster\.local\/ns\/default\/sa\/demo"/m,
    );
  });

  it('re-reads the token file on every request', async () => {
    const tokenFile = join(dir, 'istio-token');
    const c = client({ token: undefined, tokenFile });
    await writeFile(tokenFile, `${NODE_TOKEN}\n`);
    expect((await c.issue(DEMO)).identity.equals(DEMO)).toBe(true);
    await writeFile(tokenFile, 'revoked');
    expect((await errorOf(c.issue(DEMO))).code).toBe('ERR_SPIFFE_CA_UNAUTHENTICATED');
    await writeFile(tokenFile, NODE_TOKEN);
    expect((await c.issue(DEMO)).identity.equals(DEMO)).toBe(true);
    await rm(tokenFile);
    expect((await errorOf(c.issue(DEMO))).code).toBe('ERR_SPIFFE_TOKEN_UNREADABLE');
  });

  it('lets a workload get its own identity without impersonation', async () => {
    const cert = await client({ token: WORKLOAD_TOKEN, impersonate: false }).issue(DEMO);
    expect(cert.identity.equals(DEMO)).toBe(true);
  });
});

describe('IstioCaClient bad input and failures', () => {
  it('reports a wrong bearer token as ERR_SPIFFE_CA_UNAUTHENTICATED', async () => {
    const before = openFds();
    const err = await errorOf(client({ token: 'wrong' }).issue(DEMO));
    expect(err.code).toBe('ERR_SPIFFE_CA_UNAUTHENTICATED');
    const missing = await errorOf(client({ token: undefined }).issue(DEMO));
    expect(missing.code).toBe('ERR_SPIFFE_CA_UNAUTHENTICATED');
    for (const c of clients.splice(0)) c.close();
    await new Promise((r) => setTimeout(r, 200));
    expect(openFds()).toBeLessThanOrEqual(before);
  });

  it('refuses impersonation to a caller not allowed it', async () => {
    const err = await errorOf(client({ token: WORKLOAD_TOKEN }).issue(OTHER));
    expect(err.code).toBe('ERR_SPIFFE_CA_PERMISSION_DENIED');
    expect(err.message).toMatch(/impersonation/);
  });

  it('refuses a workload asking for another identity than its own', async () => {
    const err = await errorOf(client({ token: WORKLOAD_TOKEN, impersonate: false }).issue(OTHER));
    expect(err.code).toBe('ERR_SPIFFE_CA_PERMISSION_DENIED');
  });

  it('reports a CSR the CA refuses as ERR_SPIFFE_CA_REJECTED', async () => {
    const { csr } = createCsr('spiffe://elsewhere.example/ns/a/sa/b');
    const err = await errorOf(client().createCertificate(csr));
    expect(err.code).toBe('ERR_SPIFFE_CA_REJECTED');
    expect(err.message).toMatch(/INVALID_ARGUMENT/);
  });

  it('reports an unreachable CA as ERR_SPIFFE_CA_UNAVAILABLE', async () => {
    const probe: NetServer = createServer();
    await new Promise<void>((r) => probe.listen(0, '127.0.0.1', r));
    const port = (probe.address() as { port: number }).port;
    await new Promise((r) => probe.close(r));
    const err = await errorOf(client({ address: `127.0.0.1:${port}` }).issue(DEMO));
    expect(err.code).toBe('ERR_SPIFFE_CA_UNAVAILABLE');
  });

  it('reports a CA that does not answer in time as ERR_SPIFFE_CA_TIMEOUT', async () => {
    const rogue = await startRogueCa(ca, () => 'hang');
    cleanups.push(rogue.close);
    const err = await errorOf(client({ address: rogue.address, timeoutMs: 300 }).issue(DEMO));
    expect(err.code).toBe('ERR_SPIFFE_CA_TIMEOUT');
  });

  it('rejects with the abort reason when the signal fires mid-call', async () => {
    const rogue = await startRogueCa(ca, () => 'hang');
    cleanups.push(rogue.close);
    const reason = new Error('caller gave up');
    const ac = new AbortController();
    setTimeout(() => ac.abort(reason), 100);
    await expect(
      client({ address: rogue.address }).issue(DEMO, { signal: ac.signal }),
    ).rejects.toBe(reason);
  });

  it('rejects a CA returning a certificate for another identity', async () => {
    const rogue = await startRogueCa(ca, () => ({
      certChain: ca.signCsr(createCsr(OTHER).csr),
    }));
    cleanups.push(rogue.close);
    const err = await errorOf(client({ address: rogue.address }).issue(DEMO));
    expect(err.code).toBe('ERR_SPIFFE_CA_IDENTITY_MISMATCH');
  });

  it('rejects a CA returning a chain that is not for our key or is garbage', async () => {
    const rogue = await startRogueCa(ca, (req) =>
      req.validityDuration === 1
        ? { certChain: ['not a certificate', 'nor this'] }
        : { certChain: ca.signCsr(createCsr(DEMO).csr) },
    );
    cleanups.push(rogue.close);
    const c = client({ address: rogue.address });
    expect((await errorOf(c.issue(DEMO))).code).toBe('ERR_SPIFFE_CA_RESPONSE_INVALID');
    expect((await errorOf(c.issue(DEMO, { ttlSeconds: 1 }))).code).toBe(
      'ERR_SPIFFE_CA_RESPONSE_INVALID',
    );
  });

  it('rejects calls after close with ERR_SPIFFE_CLOSED', async () => {
    const c = client();
    c.close();
    expect((await errorOf(c.issue(DEMO))).code).toBe('ERR_SPIFFE_CLOSED');
  });
});

describe('IstioCaServer lifecycle', () => {
  it('closes gracefully and idempotently, and refuses connections after', async () => {
    const s = new IstioCaServer({ ca, tokens: { t: { mayImpersonate: true } } });
    await s.listen();
    const c = client({ address: s.address, rootCert: s.rootCert, token: 't' });
    expect((await c.issue(DEMO)).identity.equals(DEMO)).toBe(true);
    await Promise.all([s.close(), s.close()]);
    c.close();
    const err = await errorOf(
      client({ address: s.address, rootCert: s.rootCert, token: 't' }).issue(DEMO),
    );
    expect(err.code).toBe('ERR_SPIFFE_CA_UNAVAILABLE');
  });

  it('destroys at once', async () => {
    const s = new IstioCaServer({ ca, tokens: { t: { mayImpersonate: true } } });
    await s.listen({ host: '::1' });
    expect(s.address).toMatch(/^\[::1\]:\d+$/);
    expect(
      (
        await client({ address: s.address, rootCert: s.rootCert, token: 't' }).issue(DEMO)
      ).identity.equals(DEMO),
    ).toBe(true);
    s.destroy();
    await s.close();
  });

  it('refuses to listen twice', async () => {
    const s = new IstioCaServer({ ca });
    await s.listen();
    cleanups.push(() => s.destroy());
    await expect(s.listen()).rejects.toMatchObject({ code: 'ERR_SPIFFE_INVALID_ARGUMENT' });
  });

  it('refuses every caller when no authentication is configured', async () => {
    const s = new IstioCaServer({ ca });
    await s.listen();
    cleanups.push(() => s.destroy());
    const err = await errorOf(client({ address: s.address, rootCert: s.rootCert }).issue(DEMO));
    expect(err.code).toBe('ERR_SPIFFE_CA_UNAUTHENTICATED');
  });
});
