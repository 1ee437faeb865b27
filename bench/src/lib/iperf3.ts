/**
 * `iperf3` as an independent traffic tool: a one-off server on a free port and a client whose
 * JSON report (`-J`) is parsed into received-side throughput. The client can be pointed at any
 * host:port that forwards to the server (a stunnel4 pair, a transparent tunnel).
 */

import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { type ManagedProcess, spawnManaged } from './children.js';
import { freePort } from './ports.js';
import type { Endpoint } from './traffic.js';

const run = promisify(execFile);

export interface Iperf3Server {
  endpoint: Endpoint;
  process: ManagedProcess;
  close(): Promise<void>;
}

/**
 * Start `iperf3 -s` on `host` (a free port is picked; retried if taken meanwhile). The server
 * handles one test at a time; start it once per measurement series.
 */
export async function startIperf3Server(
  options: { host?: string; signal?: AbortSignal } = {},
): Promise<Iperf3Server> {
  const host = options.host ?? '127.0.0.1';
  for (let attempt = 1; ; attempt++) {
    const port = await freePort(host);
    const proc = spawnManaged('iperf3', ['-s', '--forceflush', '-B', host, '-p', String(port)], {
      name: 'iperf3 server',
    });
    try {
      await proc.waitForOutput(/Server listening on/, { timeoutMs: 5000, signal: options.signal });
      return { endpoint: { host, port }, process: proc, close: () => proc.stop({ graceMs: 1000 }) };
    } catch (err) {
      await proc.stop({ graceMs: 500 });
      if (attempt >= 5 || !/in use/i.test(proc.output)) throw err;
    }
  }
}

export interface Iperf3Options {
  /** Where the client connects (the server itself, or a proxy in front of it). */
  target: Endpoint;
  /** Parallel streams (`-P`, default 1). */
  streams?: number;
  /** Test length in seconds (`-t`, default 5). */
  seconds?: number;
  /** Client source address (`-B`). */
  bind?: string;
  /** Send buffer length (`-l`), e.g. `128K`. */
  length?: string;
  signal?: AbortSignal;
}

export interface Iperf3Result {
  /** Receiver-side throughput in 10^9 bits/s (`end.sum_received.bits_per_second`). */
  gbps: number;
  bytes: number;
  seconds: number;
  retransmits?: number;
  /** CPU utilisation percentages iperf3 reports for itself. */
  cpu?: { host: number; remote: number };
}

/** Parse `iperf3 -J` output; throws with iperf3's own `error` field when the test failed. */
export function parseIperf3Json(text: string): Iperf3Result {
  // biome-ignore lint/suspicious/noExplicitAny: iperf3's JSON is large; only a few fields are read.
  const json = JSON.parse(text) as any;
  if (json.error) throw new Error(`iperf3: ${json.error}`);
  const received = json.end?.sum_received;
  if (!received || typeof received.bits_per_second !== 'number') {
    throw new Error('iperf3 JSON has no end.sum_received');
  }
  const cpu = json.end?.cpu_utilization_percent;
  return {
    gbps: received.bits_per_second / 1e9,
    bytes: received.bytes,
    seconds: received.seconds,
    retransmits: json.end?.sum_sent?.retransmits,
    cpu: cpu ? { host: cpu.host_total, remote: cpu.remote_total } : undefined,
  };
}

/**
 * Run `iperf3 -c` against `target` and return the parsed receiver-side result. Retries for up
 * to 3 s while the server still reports itself busy with the previous test.
 */
export async function runIperf3(options: Iperf3Options): Promise<Iperf3Result> {
  for (let waited = 0; ; waited += 250) {
    try {
      return await runIperf3Once(options);
    } catch (err) {
      if (!/busy/i.test((err as Error).message) || waited >= 3000) throw err;
      await new Promise((r) => setTimeout(r, 250));
    }
  }
}

async function runIperf3Once(options: Iperf3Options): Promise<Iperf3Result> {
  const args = [
    '-c',
    options.target.host,
    '-p',
    String(options.target.port),
    '-t',
    String(options.seconds ?? 5),
    '-P',
    String(options.streams ?? 1),
    '-J',
  ];
  if (options.length) args.push('-l', options.length);
  if (options.bind) args.push('-B', options.bind);
  try {
    const { stdout } = await run('iperf3', args, {
      signal: options.signal,
      timeout: ((options.seconds ?? 5) + 20) * 1000,
      maxBuffer: 16 * 1024 * 1024,
    });
    return parseIperf3Json(stdout);
  } catch (err) {
    const stdout = (err as { stdout?: string }).stdout;
    if (stdout) return parseIperf3Json(stdout);
    throw err;
  }
}
