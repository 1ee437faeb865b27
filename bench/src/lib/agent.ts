/**
 * A traffic agent: a child Node process running the servers and clients of `traffic.ts`, so
 * load generation and sinks never share an event loop (or a CPU measurement) with the code
 * under test. Use one agent for servers and another for clients.
 */

import { fileURLToPath } from 'node:url';
import { type ManagedProcess, nodeArgs, spawnManaged } from './children.js';
import type {
  BulkOptions,
  BulkResult,
  ConnRateOptions,
  ConnRateResult,
  DialSpec,
  LatencyOptions,
  LatencyResult,
} from './traffic.js';

const AGENT_MAIN = fileURLToPath(new URL('./agent-main.ts', import.meta.url));

interface Reply {
  id: number;
  ok: boolean;
  result?: unknown;
  error?: string;
}

/** A server running in an agent; `close()` stops it. */
export interface AgentServer {
  host: string;
  port: number;
  close(): Promise<void>;
}

export interface AgentOptions {
  /** Label in errors and profile names (default `agent`). */
  name?: string;
  /** Write a CPU profile of this agent into `dir`. */
  profile?: { dir: string; name: string };
  signal?: AbortSignal;
}

export class Agent {
  readonly process: ManagedProcess;
  #next = 1;
  #pending = new Map<number, { resolve: (v: unknown) => void; reject: (e: Error) => void }>();

  private constructor(proc: ManagedProcess) {
    this.process = proc;
    proc.child.on('message', (msg: Reply) => {
      const p = this.#pending.get(msg.id);
      if (!p) return;
      this.#pending.delete(msg.id);
      if (msg.ok) p.resolve(msg.result);
      else p.reject(new Error(`${proc.name}: ${msg.error}`));
    });
    void proc.exited.then((code) => {
      for (const p of this.#pending.values()) {
        p.reject(new Error(`${proc.name} exited (${code}):\n${proc.tail()}`));
      }
      this.#pending.clear();
    });
  }

  /** Start an agent process and wait until it is ready for requests. */
  static async start(options: AgentOptions = {}): Promise<Agent> {
    const name = options.name ?? 'agent';
    const proc = spawnManaged(
      process.execPath,
      nodeArgs(AGENT_MAIN, [], { profile: options.profile }),
      {
        name,
        ipc: true,
      },
    );
    const agent = new Agent(proc);
    const ready = new Promise<void>((resolve, reject) => {
      agent.#pending.set(0, { resolve: () => resolve(), reject });
    });
    const onAbort = () => void proc.stop();
    options.signal?.addEventListener('abort', onAbort, { once: true });
    try {
      await ready;
    } finally {
      options.signal?.removeEventListener('abort', onAbort);
    }
    return agent;
  }

  get pid(): number {
    return this.process.pid;
  }

  async #call<T>(op: string, args: object, signal?: AbortSignal): Promise<T> {
    signal?.throwIfAborted();
    const id = this.#next++;
    const result = new Promise<T>((resolve, reject) => {
      this.#pending.set(id, { resolve: resolve as (v: unknown) => void, reject });
    });
    this.process.child.send({ id, op, args });
    if (!signal) return await result;
    const onAbort = () => {
      if (this.process.running)
        this.process.child.send({ id: this.#next++, op: 'abort', args: { target: id } });
    };
    signal.addEventListener('abort', onAbort, { once: true });
    try {
      return await result;
    } finally {
      signal.removeEventListener('abort', onAbort);
    }
  }

  async #server(op: 'sink' | 'echo', host: string, port: number): Promise<AgentServer> {
    const r = await this.#call<{ handle: number; host: string; port: number }>(op, { host, port });
    return {
      host: r.host,
      port: r.port,
      close: async () => {
        if (this.process.running) await this.#call('closeServer', { handle: r.handle });
      },
    };
  }

  /** Start a byte-counting sink (see `startSink`) on `host`, port 0 unless given. */
  sink(host = '127.0.0.1', port = 0): Promise<AgentServer> {
    return this.#server('sink', host, port);
  }

  /** Start an echo server (see `startEcho`) on `host`, port 0 unless given. */
  echo(host = '127.0.0.1', port = 0): Promise<AgentServer> {
    return this.#server('echo', host, port);
  }

  /** Bulk throughput from this agent (see `runBulk`). */
  bulk(options: BulkOptions, signal?: AbortSignal): Promise<BulkResult> {
    return this.#call('bulk', options, signal);
  }

  /** Request/response latency from this agent (see `runLatency`). */
  latency(options: LatencyOptions, signal?: AbortSignal): Promise<LatencyResult> {
    return this.#call('latency', options, signal);
  }

  /** New connections per second from this agent (see `runConnRate`). */
  connRate(options: ConnRateOptions, signal?: AbortSignal): Promise<ConnRateResult> {
    return this.#call('connRate', options, signal);
  }

  /** Open `count` idle connections (see `openIdle`); `close()` releases them. */
  async idle(
    options: { dial: DialSpec; count: number; concurrency?: number },
    signal?: AbortSignal,
  ): Promise<{ count: number; close(): Promise<void> }> {
    const r = await this.#call<{ handle: number; count: number }>('idle', options, signal);
    return {
      count: r.count,
      close: async () => {
        if (this.process.running) await this.#call('closeIdle', { handle: r.handle });
      },
    };
  }

  /** Ask the agent to exit (writing its profile if any); kill it after 5 s. */
  async close(): Promise<void> {
    if (!this.process.running) return;
    this.process.child.send({ id: this.#next++, op: 'exit', args: {} });
    const gone = await Promise.race([
      this.process.exited.then(() => true),
      new Promise<false>((r) => setTimeout(() => r(false), 5000).unref()),
    ]);
    if (!gone) await this.process.stop({ graceMs: 1000 });
  }
}
