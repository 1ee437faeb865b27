import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdtempSync } from 'node:fs';
import { createServer as createHttpServer, type Server as HttpServer } from 'node:http';
import { type AddressInfo, createServer, type Server as NetServer, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { resolveConfig, Ztunnel } from '../../src/index.js';
import { createLogger } from '../../src/logging.js';
import { loopbackNodeEnv } from '../../src/testing/index.js';

/** A port that was free a moment ago on every 127.0.0.x (bound on 127.0.0.1, then released). */
export async function freePort(): Promise<number> {
  const s = createServer();
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
  const { port } = s.address() as AddressInfo;
  await new Promise((r) => s.close(r));
  return port;
}

export interface LogCapture {
  lines: Record<string, unknown>[];
  stream: Writable;
}

export function captureLogs(): LogCapture {
  const lines: Record<string, unknown>[] = [];
  const stream = new Writable({
    write(chunk: Buffer, _e, cb) {
      for (const l of chunk.toString().split('\n')) if (l) lines.push(JSON.parse(l));
      cb();
    },
  });
  return { lines, stream };
}

export interface MeshNode {
  zt: Ztunnel;
  logs: LogCapture;
}

/** Starts a dedicated-mode ztunnel for `ns/name/sa` whose listeners bind `ip`. */
export async function startNode(opts: {
  ip: string;
  workload: string;
  localXdsPath: string;
  caDir: string;
  hbonePort: number;
  env?: Record<string, string>;
}): Promise<MeshNode> {
  const logs = captureLogs();
  const config = resolveConfig({
    env: {
      ...loopbackNodeEnv(opts),
      ZTUNNEL_ADMIN_ADDRESS: '127.0.0.1:0',
      ZTUNNEL_STATS_ADDRESS: '127.0.0.1:0',
      ZTUNNEL_READINESS_ADDRESS: '127.0.0.1:0',
      CONNECTION_TERMINATION_DEADLINE: '2s',
      LOG_LEVEL: 'info',
      ...opts.env,
    },
  });
  const logger = createLogger({ level: 'info', format: 'json', destination: logs.stream });
  const zt = await Ztunnel.start({ config, logger });
  return { zt, logs };
}

export function tmp(prefix: string): string {
  return mkdtempSync(join(tmpdir(), prefix));
}

/** An HTTP server answering with who called it. */
export async function startHttpbin(host: string): Promise<{ server: HttpServer; port: number }> {
  const server = createHttpServer((req, res) => {
    res.writeHead(200, { 'content-type': 'application/json' });
    res.end(JSON.stringify({ path: req.url, from: req.socket.remoteAddress }));
  });
  await new Promise<void>((r) => server.listen(0, host, r));
  return { server, port: (server.address() as AddressInfo).port };
}

export interface CurlResult {
  code: number;
  stdout: string;
  stderr: string;
}

/** Runs curl (an independent client) and never rejects. */
export function curl(args: string[]): Promise<CurlResult> {
  return new Promise((resolve) => {
    execFile('curl', ['-sS', '--max-time', '10', ...args], (err, stdout, stderr) => {
      resolve({ code: err ? ((err as { code?: number }).code ?? 1) : 0, stdout, stderr });
    });
  });
}

export async function waitFor<T>(
  fn: () => Promise<T | undefined> | T | undefined,
  what: string,
  timeoutMs = 10_000,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await fn();
    if (v !== undefined && v !== false) return v as T;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** An app that answers `sha256 <hex>\n` of everything it received once the client half-closes. */
export async function startShaApp(
  host: string,
): Promise<{ server: NetServer; port: number; close(): void }> {
  const sockets = new Set<Socket>();
  const server = createServer({ allowHalfOpen: true }, (s) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
    const h = createHash('sha256');
    s.on('data', (d) => h.update(d));
    s.on('end', () => s.end(`sha256 ${h.digest('hex')}\n`));
    s.on('error', () => {});
  });
  await new Promise<void>((r) => server.listen(0, host, r));
  return {
    server,
    port: (server.address() as AddressInfo).port,
    close: () => {
      for (const s of sockets) s.destroy();
      server.close();
    },
  };
}

/** Waits until the node's /healthz/ready answers 200. */
export async function waitReady(node: MeshNode): Promise<void> {
  const r = node.zt.addresses.readiness;
  await waitFor(
    async () => (await fetch(`http://${r.address}:${r.port}/healthz/ready`)).ok || undefined,
    'readiness',
  );
}
