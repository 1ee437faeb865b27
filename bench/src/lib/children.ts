/**
 * Child processes under test: spawn, watch their output for readiness, stop them cleanly.
 * Every child spawned here is tracked, so the runner can kill leftovers after a scenario that
 * failed or ran out of time.
 */

import { type ChildProcess, type SpawnOptions, spawn } from 'node:child_process';
import { mkdirSync } from 'node:fs';
import { createRequire } from 'node:module';
import { setTimeout as sleep } from 'node:timers/promises';

const live = new Set<ManagedProcess>();
const OUTPUT_LIMIT = 64 * 1024;

export interface SpawnManagedOptions extends Pick<SpawnOptions, 'cwd' | 'env'> {
  /** Label for errors and profiles, e.g. `stunnel4 client`. */
  name: string;
  /** Extra file descriptors / IPC, as in `spawn`'s `stdio[3..]`. */
  ipc?: boolean;
}

/** A spawned child whose stdout/stderr are kept (last 64 KiB) for readiness checks and errors. */
export class ManagedProcess {
  readonly name: string;
  readonly child: ChildProcess;
  /** Resolves with the exit code (or signal name) once the process is gone. */
  readonly exited: Promise<number | string>;
  #output = '';
  #exit: number | string | undefined;
  #watchers = new Set<() => void>();

  constructor(command: string, args: string[], options: SpawnManagedOptions) {
    this.name = options.name;
    this.child = spawn(command, args, {
      cwd: options.cwd,
      env: options.env ?? process.env,
      stdio: options.ipc ? ['ignore', 'pipe', 'pipe', 'ipc'] : ['ignore', 'pipe', 'pipe'],
    });
    live.add(this);
    const onData = (chunk: Buffer) => {
      this.#output = (this.#output + chunk.toString('utf8')).slice(-OUTPUT_LIMIT);
      for (const w of this.#watchers) w();
    };
    this.child.stdout?.on('data', onData);
    this.child.stderr?.on('data', onData);
    this.exited = new Promise((resolve) => {
      this.child.once('error', (err) => {
        this.#output += `\nspawn error: ${err.message}`;
        this.#exit = 'spawn-error';
        live.delete(this);
        for (const w of this.#watchers) w();
        resolve('spawn-error');
      });
      this.child.once('exit', (code, signal) => {
        this.#exit = code ?? signal ?? 'unknown';
        live.delete(this);
        for (const w of this.#watchers) w();
        resolve(this.#exit);
      });
    });
  }

  get pid(): number {
    if (this.child.pid === undefined) throw new Error(`${this.name} has no pid (spawn failed)`);
    return this.child.pid;
  }

  get running(): boolean {
    return this.#exit === undefined;
  }

  /** Combined stdout+stderr so far (last 64 KiB). */
  get output(): string {
    return this.#output;
  }

  /**
   * Wait until the output matches `pattern`. Rejects if the process exits first, after
   * `timeoutMs`, or on abort; the error quotes the tail of the output.
   */
  async waitForOutput(
    pattern: RegExp,
    options: { timeoutMs?: number; signal?: AbortSignal } = {},
  ): Promise<RegExpExecArray> {
    const timeoutMs = options.timeoutMs ?? 10_000;
    options.signal?.throwIfAborted();
    return await new Promise<RegExpExecArray>((resolve, reject) => {
      const finish = (err?: Error, match?: RegExpExecArray) => {
        this.#watchers.delete(check);
        clearTimeout(timer);
        options.signal?.removeEventListener('abort', onAbort);
        if (err) reject(err);
        else resolve(match!);
      };
      const check = () => {
        const m = pattern.exec(this.#output);
        if (m) finish(undefined, m);
        else if (!this.running) {
          finish(new Error(`${this.name} exited (${this.#exit}) before ready:\n${this.tail()}`));
        }
      };
      const onAbort = () => finish(options.signal!.reason as Error);
      const timer = setTimeout(
        () => finish(new Error(`${this.name} not ready after ${timeoutMs} ms:\n${this.tail()}`)),
        timeoutMs,
      );
      options.signal?.addEventListener('abort', onAbort, { once: true });
      this.#watchers.add(check);
      check();
    });
  }

  /** Last lines of output, for error messages. */
  tail(lines = 15): string {
    return this.#output.trimEnd().split('\n').slice(-lines).join('\n');
  }

  /**
   * Ask the process to exit (`SIGTERM` by default), then `SIGKILL` after `graceMs`. Idempotent;
   * resolves once it is gone.
   */
  async stop(options: { signal?: NodeJS.Signals; graceMs?: number } = {}): Promise<void> {
    if (!this.running) return;
    this.child.kill(options.signal ?? 'SIGTERM');
    const killed = sleep(options.graceMs ?? 5_000, 'timeout' as const);
    if ((await Promise.race([this.exited, killed])) === 'timeout' && this.running) {
      this.child.kill('SIGKILL');
      await this.exited;
    }
  }
}

/** Spawn a tracked child process. */
export function spawnManaged(
  command: string,
  args: string[],
  options: SpawnManagedOptions,
): ManagedProcess {
  return new ManagedProcess(command, args, options);
}

/** Children spawned through this module that are still running. */
export function liveChildren(): ManagedProcess[] {
  return [...live];
}

/** Kill every tracked child still running (the runner calls this after each scenario). */
export async function killAllChildren(graceMs = 2_000): Promise<string[]> {
  const names = [...live].map((p) => p.name);
  await Promise.all([...live].map((p) => p.stop({ graceMs })));
  return names;
}

const require = createRequire(import.meta.url);

/** Absolute path of the tsx ESM loader, so children run TypeScript whatever their cwd. */
export function tsxLoader(): string {
  return require.resolve('tsx');
}

export interface NodeArgsOptions {
  /** Write a V8 CPU profile (`--cpu-prof`) into `dir` as `<name>.cpuprofile` on exit. */
  profile?: { dir: string; name: string };
  /** Run TypeScript sources (`--import tsx`, `--conditions=@mesh/source`). Default true. */
  typescript?: boolean;
}

/**
 * `node` arguments to run `script`: TypeScript via tsx with the `@mesh/source` condition, and
 * optionally a CPU profile. Profiles are written when the process exits normally (a handled
 * SIGTERM or `process.exit`), not when it is killed.
 */
export function nodeArgs(script: string, args: string[], options: NodeArgsOptions = {}): string[] {
  const out: string[] = [];
  if (options.typescript !== false) {
    out.push('--conditions=@mesh/source', '--import', tsxLoader());
  }
  if (options.profile) {
    mkdirSync(options.profile.dir, { recursive: true });
    const stamp = new Date().toISOString().replace(/[:.]/g, '-');
    const file = `${options.profile.name.replace(/[^\w.-]+/g, '_')}-${stamp}.cpuprofile`;
    out.push('--cpu-prof', `--cpu-prof-dir=${options.profile.dir}`, `--cpu-prof-name=${file}`);
  }
  out.push(script, ...args);
  return out;
}
