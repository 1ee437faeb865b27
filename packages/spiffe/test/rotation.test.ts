import { rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { connect, createServer, type Server } from 'node:tls';
import {
  type FetchErrorEvent,
  IstioCaClient,
  IstioCaServer,
  LocalCa,
  type RotatedEvent,
  SecretManager,
  SpiffeId,
  type WorkloadCertificate,
} from '@mesh/spiffe';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { tempDir } from './helpers/openssl.js';

const SERVER_ID = SpiffeId.parse('spiffe://cluster.local/ns/a/sa/server');
const CLIENT_ID = SpiffeId.parse('spiffe://cluster.local/ns/b/sa/client');
const TTL = 3;

let dir: string;
let caServer: IstioCaServer;
let client: IstioCaClient;
let manager: SecretManager;
let tlsServer: Server;
let tlsPort: number;

/** mTLS handshake with `cert` as the client identity; resolves with the peer's SAN or the error. */
function handshake(cert: WorkloadCertificate): Promise<string> {
  return new Promise((resolve) => {
    const socket = connect({
      host: '127.0.0.1',
      port: tlsPort,
      key: cert.privateKey,
      cert: [cert.leaf, ...cert.intermediates].join(''),
      ca: cert.roots.join(''),
      checkServerIdentity: () => undefined,
      minVersion: 'TLSv1.3',
    });
    let data = '';
    socket.setEncoding('utf8');
    socket.on('data', (d) => {
      data += d;
    });
    socket.on('end', () => {
      socket.destroy();
      resolve(data);
    });
    socket.on('error', (err) => {
      socket.destroy();
      resolve(`error: ${err.message}`);
    });
  });
}

beforeAll(async () => {
  dir = await tempDir('spiffe-rotation-');
  const ca = await LocalCa.open(join(dir, 'ca'));
  caServer = new IstioCaServer({ ca, tokens: { 'node-token': { mayImpersonate: true } } });
  await caServer.listen();
  const tokenFile = join(dir, 'token');
  await writeFile(tokenFile, 'node-token');
  client = new IstioCaClient({
    address: caServer.address,
    rootCert: caServer.rootCert,
    tokenFile,
    timeoutMs: 2000,
  });
  manager = new SecretManager({ issuer: client, ttlSeconds: TTL, backoff: { initialMs: 200 } });
  const serverCert = await manager.getCertificate(SERVER_ID);
  tlsServer = createServer(
    {
      key: serverCert.privateKey,
      cert: serverCert.leaf,
      ca: serverCert.roots.join(''),
      requestCert: true,
      // Verified, but reported back instead of hanging up, so the test can read the reason.
      rejectUnauthorized: false,
      minVersion: 'TLSv1.3',
    },
    (socket) =>
      socket.end(
        socket.authorized
          ? (socket.getPeerX509Certificate()?.subjectAltName ?? 'none')
          : `refused: ${socket.authorizationError}`,
      ),
  );
  tlsServer.on('tlsClientError', () => undefined);
  // hbone-style: rebuild the server's context whenever its certificate rotates.
  manager.on('rotated', (e: RotatedEvent) => {
    if (e.identity.equals(SERVER_ID)) tlsServer.setSecureContext(contextOfOptions(e.certificate));
  });
  const contextOfOptions = (c: WorkloadCertificate) => ({
    key: c.privateKey,
    cert: [c.leaf, ...c.intermediates].join(''),
    ca: c.roots.join(''),
    minVersion: 'TLSv1.3' as const,
  });
  await new Promise<void>((r) => tlsServer.listen(0, '127.0.0.1', r));
  tlsPort = (tlsServer.address() as { port: number }).port;
});

afterAll(async () => {
  await manager?.close();
  client?.close();
  await new Promise((r) => tlsServer?.close(r));
  caServer?.destroy();
  await rm(dir, { recursive: true, force: true });
});

describe('rotation over a real gRPC CA', () => {
  it('rotates with a short TTL; callers never wait for a refresh; old certificates work until they expire', async () => {
    const first = await manager.getCertificate(CLIENT_ID);
    expect(await handshake(first)).toBe(`URI:${CLIENT_ID}`);

    const rotations: RotatedEvent[] = [];
    manager.on('rotated', (e) => rotations.push(e));
    const clientRotations = () => rotations.filter((r) => r.identity.equals(CLIENT_ID));
    let immediate = 0;
    let waited = 0;
    // Ask for the certificate every 25 ms until the client identity has rotated `count` times;
    // a held certificate is returned without waiting, so `waited` must stay 0.
    const pollUntilRotations = async (count: number) => {
      while (clientRotations().length < count) {
        const result = await Promise.race([
          manager.getCertificate(CLIENT_ID),
          new Promise<'waited'>((r) => setImmediate(() => r('waited'))),
        ]);
        if (result === 'waited') waited++;
        else immediate++;
        await new Promise((r) => setTimeout(r, 25));
      }
    };

    await pollUntilRotations(1);
    // Replaced at about half its lifetime, the first certificate still works.
    expect(clientRotations()[0]!.previous).toBe(first);
    expect(first.notAfter.getTime()).toBeGreaterThan(Date.now());
    expect(await handshake(first)).toBe(`URI:${CLIENT_ID}`);

    await pollUntilRotations(2);
    expect(waited).toBe(0);
    expect(immediate).toBeGreaterThan(10);
    expect(clientRotations()[1]!.previous).toBe(clientRotations()[0]!.certificate);
    expect(rotations.some((r) => r.identity.equals(SERVER_ID))).toBe(true);
    const latest = await manager.getCertificate(CLIENT_ID);
    expect(await handshake(latest)).toBe(`URI:${CLIENT_ID}`);

    // Once past notAfter the old certificate is refused.
    await new Promise((r) => setTimeout(r, first.notAfter.getTime() - Date.now() + 1100));
    expect(await handshake(first)).toBe('refused: CERT_HAS_EXPIRED');
    expect(await handshake(await manager.getCertificate(CLIENT_ID))).toBe(`URI:${CLIENT_ID}`);
  });

  it('keeps serving the valid certificate while the CA is down, reporting typed errors', async () => {
    const held = await manager.getCertificate(CLIENT_ID);
    const errors: FetchErrorEvent[] = [];
    manager.on('error', (e) => errors.push(e));
    caServer.destroy();
    while (errors.length < 1) await new Promise((r) => setTimeout(r, 50));
    const current = await manager.getCertificate(CLIENT_ID);
    expect(current.notAfter.getTime()).toBeGreaterThan(Date.now());
    // Either the certificate held when the CA died, or one fetched just before.
    expect(current.notAfter.getTime()).toBeGreaterThanOrEqual(held.notAfter.getTime());
    expect(errors[0]!.serving).toBe(true);
    expect((errors[0]!.error as { code?: string }).code).toBe('ERR_SPIFFE_CA_UNAVAILABLE');
    expect(manager.status(CLIENT_ID)?.state).toBe('Available');
    expect(await handshake(current)).toBe(`URI:${CLIENT_ID}`);
  });
});
