import { createHash, randomBytes } from 'node:crypto';
import { readdirSync } from 'node:fs';
import { type AddressInfo, createServer, type Server, type Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import { SpiffeId, type WorkloadCertificate } from '@mesh/spiffe';
import {
  type ConnectHandler,
  HboneClient,
  type HboneClientOptions,
  HboneServer,
  type HboneServerOptions,
} from '../../src/index.js';
import { id, TestPki } from './pki.js';

export const SERVER_ID = id('dst', 'server');
export const CLIENT_ID = id('src', 'client');

export function fdCount(): number {
  return readdirSync('/proc/self/fd').length;
}

/** Waits until `check()` holds, polling; throws with `what` after `ms`. */
export async function eventually(check: () => boolean, what: string, ms = 10_000): Promise<void> {
  const end = Date.now() + ms;
  while (!check()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

/** Waits for the fd count to come back to `baseline` (sockets close asynchronously). */
export async function fdsBackTo(baseline: number): Promise<void> {
  await eventually(() => fdCount() <= baseline, `fd count back to ${baseline} (now ${fdCount()})`);
}

/** A TCP app: echo, or custom. Tracks sockets so tests can close everything. */
export class App {
  readonly server: Server;
  readonly sockets = new Set<Socket>();
  port = 0;
  constructor(onSocket: (s: Socket) => void = (s) => s.pipe(s)) {
    this.server = createServer({ allowHalfOpen: true }, (s) => {
      this.sockets.add(s);
      s.on('error', () => {});
      s.once('close', () => this.sockets.delete(s));
      onSocket(s);
    });
  }
  async listen(): Promise<number> {
    await new Promise<void>((r) => this.server.listen(0, '127.0.0.1', r));
    this.port = (this.server.address() as AddressInfo).port;
    return this.port;
  }
  async close(): Promise<void> {
    for (const s of this.sockets) s.destroy();
    await new Promise<void>((r) => this.server.close(() => r()));
  }
}

export interface Env {
  pki: TestPki;
  serverCert: WorkloadCertificate;
  clientCert: WorkloadCertificate;
  server: HboneServer;
  client: HboneClient;
  port: number;
  connectOpts(authority: string): Parameters<HboneClient['connect']>[0];
  close(): Promise<void>;
}

/** A listening HboneServer and an HboneClient sharing a fresh openssl PKI. */
export async function makeEnv(
  onConnect: ConnectHandler,
  opts: {
    server?: Partial<HboneServerOptions>;
    client?: Partial<HboneClientOptions>;
    pki?: TestPki;
  } = {},
): Promise<Env> {
  const pki = opts.pki ?? new TestPki();
  const serverCert = pki.issue(SERVER_ID);
  const clientCert = pki.issue(CLIENT_ID);
  const server = new HboneServer({ certificate: serverCert, onConnect, ...opts.server });
  server.on('connection-error', () => {});
  const { port } = await server.listen({ host: '127.0.0.1' });
  const client = new HboneClient({ certificates: clientCert, ...opts.client });
  return {
    pki,
    serverCert,
    clientCert,
    server,
    client,
    port,
    connectOpts: (authority) => ({
      authority,
      via: { host: '127.0.0.1', port },
      sourceIdentity: SpiffeId.parse(CLIENT_ID),
      expectedIdentities: [SERVER_ID],
    }),
    async close() {
      client.destroy();
      await server.close({ graceMs: 100 });
      if (!opts.pki) pki.dispose();
    },
  };
}

/** Writes `data` in 64 KiB chunks with backpressure, then optionally ends. */
export async function writeAll(s: Duplex, data: Buffer, end = true): Promise<void> {
  const chunk = 64 * 1024;
  for (let off = 0; off < data.length; off += chunk) {
    if (!s.write(data.subarray(off, off + chunk))) {
      await new Promise<void>((resolve, reject) => {
        const onDrain = () => {
          s.off('close', onClose);
          resolve();
        };
        const onClose = () => {
          s.off('drain', onDrain);
          reject(new Error('closed while writing'));
        };
        s.once('drain', onDrain);
        s.once('close', onClose);
      });
    }
  }
  if (end) s.end();
}

/** Reads until EOF; resolves with the SHA-256 and length. */
export function digestUntilEnd(s: Duplex): Promise<{ sha256: string; length: number }> {
  return new Promise((resolve, reject) => {
    const h = createHash('sha256');
    let length = 0;
    s.on('data', (c: Buffer) => {
      h.update(c);
      length += c.length;
    });
    s.once('end', () => resolve({ sha256: h.digest('hex'), length }));
    s.once('error', reject);
  });
}

export function sha256(b: Buffer): string {
  return createHash('sha256').update(b).digest('hex');
}

export { randomBytes };
