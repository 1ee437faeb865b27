/**
 * A `stunnel4` mTLS pair, the baseline every tunnel figure is compared with: a client-side
 * stunnel accepting plain TCP and a server-side stunnel terminating TLS 1.3 (mutual auth, the
 * same certificates as the tunnel under test) and connecting to the real server.
 *
 * Configured like ztunnel where stunnel allows: TLS 1.3 only, AES-256-GCM then AES-128-GCM,
 * TCP_NODELAY both sides, no session resumption (every connection is a full handshake).
 * stunnel cannot check a SPIFFE URI SAN; it verifies the chain only.
 */

import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { type ManagedProcess, spawnManaged } from './children.js';
import { freePort } from './ports.js';
import type { TrafficPath } from './suite.js';
import type { Endpoint } from './traffic.js';

export interface StunnelTls {
  certPath: string;
  keyPath: string;
  caPath: string;
}

export interface StunnelPairOptions {
  /** Where the real server listens (the server-side stunnel connects here). */
  target: Endpoint;
  /** Client-side certificate, key and trust anchors. */
  client: StunnelTls;
  /** Server-side certificate, key and trust anchors. */
  server: StunnelTls;
  /** Scratch directory for the two config files. */
  dir: string;
  /** Address both stunnels listen on (default 127.0.0.1). */
  host?: string;
  /** stunnel binary (default `stunnel4`, falling back to what PATH has). */
  command?: string;
  signal?: AbortSignal;
}

export interface StunnelPair {
  /** Where the application connects (the client-side stunnel). */
  entry: Endpoint;
  /** The server-side stunnel's TLS port. */
  tlsPort: number;
  client: ManagedProcess;
  server: ManagedProcess;
  /** Stop both processes. */
  close(): Promise<void>;
}

/** The stunnel configuration for one side (exported for tests and for reading). */
export function stunnelConfig(
  side: 'client' | 'server',
  accept: string,
  connect: string,
  tls: StunnelTls,
): string {
  return [
    'foreground = yes',
    'pid =',
    'debug = notice',
    '[bench]',
    `client = ${side === 'client' ? 'yes' : 'no'}`,
    `accept = ${accept}`,
    `connect = ${connect}`,
    `cert = ${tls.certPath}`,
    `key = ${tls.keyPath}`,
    `CAfile = ${tls.caPath}`,
    'verifyChain = yes',
    'requireCert = yes',
    'sslVersionMin = TLSv1.3',
    'sslVersionMax = TLSv1.3',
    'ciphersuites = TLS_AES_256_GCM_SHA384:TLS_AES_128_GCM_SHA256',
    'sessionResume = no',
    'libwrap = no',
    'socket = l:TCP_NODELAY=1',
    'socket = r:TCP_NODELAY=1',
    '',
  ].join('\n');
}

const READY = /Configuration successful/;
const IN_USE = /Address already in use|Error binding service/i;

async function startOne(
  name: string,
  command: string,
  configPath: string,
  signal?: AbortSignal,
): Promise<ManagedProcess> {
  const proc = spawnManaged(command, [configPath], { name });
  try {
    await proc.waitForOutput(READY, { timeoutMs: 10_000, signal });
  } catch (err) {
    await proc.stop({ graceMs: 500 });
    throw Object.assign(err as Error, { inUse: IN_USE.test(proc.output) });
  }
  // stunnel reports success before a late bind failure is logged only in rare races; a failed
  // bind makes it exit, which the next step notices when it cannot connect.
  if (IN_USE.test(proc.output)) {
    await proc.stop({ graceMs: 500 });
    throw Object.assign(new Error(`${name}: address in use`), { inUse: true });
  }
  return proc;
}

/**
 * Start the pair. stunnel cannot bind port 0, so ports are picked with {@link freePort} and
 * the start is retried (up to 5 times) when another process took the port in between.
 */
export async function startStunnelPair(options: StunnelPairOptions): Promise<StunnelPair> {
  const host = options.host ?? '127.0.0.1';
  const command = options.command ?? 'stunnel4';
  const start = async <T>(fn: (port: number) => Promise<T>): Promise<[T, number]> => {
    for (let attempt = 1; ; attempt++) {
      const port = await freePort(host);
      try {
        return [await fn(port), port];
      } catch (err) {
        if (!(err as { inUse?: boolean }).inUse || attempt >= 5) throw err;
        options.signal?.throwIfAborted();
      }
    }
  };
  const [server, tlsPort] = await start(async (port) => {
    const path = join(options.dir, `stunnel-server-${port}.conf`);
    await writeFile(
      path,
      stunnelConfig(
        'server',
        `${host}:${port}`,
        `${options.target.host}:${options.target.port}`,
        options.server,
      ),
    );
    return await startOne('stunnel4 server', command, path, options.signal);
  });
  try {
    const [client, entryPort] = await start(async (port) => {
      const path = join(options.dir, `stunnel-client-${port}.conf`);
      await writeFile(
        path,
        stunnelConfig('client', `${host}:${port}`, `${host}:${tlsPort}`, options.client),
      );
      return await startOne('stunnel4 client', command, path, options.signal);
    });
    return {
      entry: { host, port: entryPort },
      tlsPort,
      client,
      server,
      close: async () => {
        await Promise.all([client.stop({ graceMs: 2000 }), server.stop({ graceMs: 2000 })]);
      },
    };
  } catch (err) {
    await server.stop({ graceMs: 500 });
    throw err;
  }
}

/** `stunnel4 -version` first line, or undefined when stunnel is missing. */
export function parseStunnelVersion(output: string): string | undefined {
  return /stunnel (\d+\.\d+\S*)/.exec(output)?.[1];
}

/**
 * The stunnel4 baseline as a {@link TrafficPath} for `comparePaths`: one pair per server,
 * both stunnel processes metered.
 */
export function stunnelPath(options: {
  client: StunnelTls;
  server: StunnelTls;
  dir: string;
  /** Default `stunnel4`. */
  name?: string;
  command?: string;
}): TrafficPath {
  return {
    name: options.name ?? 'stunnel4',
    baseline: true,
    setup: async (server, _kind, signal) => {
      const pair = await startStunnelPair({ ...options, target: server, signal });
      return {
        dial: { target: pair.entry },
        processes: [
          { name: 'stunnel4 client', pid: pair.client.pid },
          { name: 'stunnel4 server', pid: pair.server.pid },
        ],
        close: pair.close,
      };
    },
  };
}
