/**
 * Helpers for the namespaced end-to-end tests: sockets and HTTP requests made from inside a
 * pod's network namespace (through @mesh/redirect's netns socket calls, so the test process
 * itself plays every app and client), a TCP forwarder that exposes a loopback server of the
 * test process inside the lab, and a ztunnel process spawned inside a pod.
 */
import { type ChildProcess, execFileSync } from 'node:child_process';
import { request } from 'node:http';
import { connect, type Server, type Socket } from 'node:net';
import { fileURLToPath } from 'node:url';
import { connectSocket, createTransparentServer } from '@mesh/redirect';
import type { Netns } from '@mesh/redirect/testing';

/** Connects from inside `ns` (the kernel's capture rules there apply); resolves once connected. */
export function podConnect(ns: Netns, host: string, port: number): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const s = connectSocket({ netns: ns.path, host, port, noDelay: true });
    s.once('error', reject);
    s.once('connect', () => {
      s.off('error', reject);
      resolve(s);
    });
  });
}

/** A TCP server of this process whose listening socket lives in `ns`. */
export function podServer(
  ns: Netns,
  port: number,
  onConnection: (socket: Socket) => void,
  host = '0.0.0.0',
): Promise<Server> {
  return createTransparentServer({ netns: ns.path, host, port }, (socket) => {
    socket.on('error', () => {});
    onConnection(socket);
  });
}

export interface Received {
  data: Buffer;
  /** How the connection ended: a clean FIN, or an error such as ECONNRESET. */
  end: 'fin' | string;
}

/** Collects everything `socket` receives until it closes. */
export function readAll(socket: Socket): Promise<Received> {
  return new Promise((resolve) => {
    const chunks: Buffer[] = [];
    let end = 'fin';
    socket.on('data', (d: Buffer) => chunks.push(d));
    socket.on('error', (err: NodeJS.ErrnoException) => {
      end = err.code ?? err.message;
    });
    socket.on('close', () => resolve({ data: Buffer.concat(chunks), end }));
  });
}

/** Connects from `ns`, sends `payload` (then FIN) and returns what came back. */
export async function podExchange(
  ns: Netns,
  host: string,
  port: number,
  payload: Buffer | string = '',
): Promise<Received> {
  let s: Socket;
  try {
    s = await podConnect(ns, host, port);
  } catch (err) {
    return { data: Buffer.alloc(0), end: (err as NodeJS.ErrnoException).code ?? String(err) };
  }
  const done = readAll(s);
  s.end(payload);
  return done;
}

/** An HTTP GET made from inside `ns` (to the pod's own 127.0.0.1 admin ports, say). */
export function podGet(
  ns: Netns,
  host: string,
  port: number,
  path: string,
): Promise<{ status: number; text: string }> {
  return new Promise((resolve, reject) => {
    const req = request(
      { host, port, path, createConnection: () => connectSocket({ netns: ns.path, host, port }) },
      (res) => {
        let text = '';
        res.setEncoding('utf8');
        res.on('data', (d: string) => {
          text += d;
        });
        res.on('end', () => resolve({ status: res.statusCode ?? 0, text }));
        res.on('error', reject);
      },
    );
    req.setTimeout(5000, () => req.destroy(new Error(`GET ${path} timed out`)));
    req.on('error', reject);
    req.end();
  });
}

/**
 * Listens on `host:port` inside `ns` and relays every connection to 127.0.0.1:`targetPort`
 * in this process's namespace: how pods reach the fake xDS server and the CA of the test.
 */
export function forwardIntoNetns(
  ns: Netns,
  host: string,
  port: number,
  targetPort: number,
): Promise<Server> {
  return podServer(
    ns,
    port,
    (inbound) => {
      const outbound = connect(targetPort, '127.0.0.1');
      outbound.on('error', () => inbound.destroy());
      inbound.on('error', () => outbound.destroy());
      inbound.on('close', () => outbound.destroy());
      outbound.on('close', () => inbound.destroy());
      inbound.pipe(outbound).pipe(inbound);
    },
    host,
  );
}

export interface ZtunnelProcess {
  child: ChildProcess;
  /** Every JSON log line so far. */
  logs: Record<string, unknown>[];
  exited: Promise<number | null>;
  /** Resolves with the first log line `match` accepts (rejects after `timeoutMs`). */
  waitForLog(
    match: (l: Record<string, unknown>) => boolean,
    what: string,
    timeoutMs?: number,
  ): Promise<Record<string, unknown>>;
  stderr(): string;
}

const entry = fileURLToPath(new URL('../../../src/main.ts', import.meta.url));

/** Spawns `ztunnel` (the CLI, from source) inside `ns` with `env`; resolves once it logged "ztunnel started". */
export async function spawnZtunnel(
  ns: Netns,
  env: Record<string, string>,
): Promise<ZtunnelProcess> {
  const child = ns.spawn(
    process.execPath,
    ['--conditions=@mesh/source', '--import', 'tsx', entry],
    {
      env: { ...process.env, ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    },
  );
  const logs: Record<string, unknown>[] = [];
  const waiters = new Set<() => void>();
  let buffered = '';
  let err = '';
  child.stdout?.on('data', (d: Buffer) => {
    buffered += d.toString();
    const lines = buffered.split('\n');
    buffered = lines.pop() ?? '';
    for (const line of lines) {
      if (!line) continue;
      try {
        logs.push(JSON.parse(line) as Record<string, unknown>);
      } catch {
        logs.push({ msg: line });
      }
    }
    for (const w of waiters) w();
  });
  child.stderr?.on('data', (d: Buffer) => {
    err += d.toString();
  });
  const exited = new Promise<number | null>((r) => child.once('exit', (code) => r(code)));
  const waitForLog: ZtunnelProcess['waitForLog'] = (match, what, timeoutMs = 30_000) =>
    new Promise((resolve, reject) => {
      const check = () => {
        const hit = logs.find(match);
        if (!hit) return;
        cleanup();
        resolve(hit);
      };
      const timer = setTimeout(() => {
        cleanup();
        reject(
          new Error(
            `ztunnel in ${ns.name}: timed out waiting for ${what}; stderr: ${err.slice(-2000)}`,
          ),
        );
      }, timeoutMs);
      const onExit = () => {
        cleanup();
        reject(
          new Error(
            `ztunnel in ${ns.name} exited while waiting for ${what}; stderr: ${err.slice(-2000)}`,
          ),
        );
      };
      const cleanup = () => {
        clearTimeout(timer);
        waiters.delete(check);
        child.off('exit', onExit);
      };
      waiters.add(check);
      child.once('exit', onExit);
      check();
    });
  const z: ZtunnelProcess = { child, logs, exited, waitForLog, stderr: () => err };
  await waitForLog((l) => l.msg === 'ztunnel started', '"ztunnel started"');
  return z;
}

/** Polls `fn` every 50 ms until it returns something other than undefined/false. */
export async function waitFor<T>(
  fn: () => Promise<T | undefined | false> | T | undefined | false,
  what: string,
  timeoutMs = 15_000,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    try {
      const v = await fn();
      if (v !== undefined && v !== false) return v as T;
    } catch (err) {
      last = err;
    }
    if (Date.now() > deadline)
      throw new Error(`timed out waiting for ${what}${last ? `: ${String(last)}` : ''}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** Adds `iptables -t nat -I ISTIO_OUTPUT 1 -d <cidr> -j RETURN` in `ns`. */
export function bypassCapture(ns: Netns, cidr: string): void {
  execFileSync('nsenter', [
    `--net=${ns.path}`,
    '--',
    'iptables',
    '-t',
    'nat',
    '-I',
    'ISTIO_OUTPUT',
    '1',
    '-d',
    cidr,
    '-p',
    'tcp',
    '-j',
    'RETURN',
  ]);
}
