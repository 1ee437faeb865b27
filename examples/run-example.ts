// Test helper shared by the examples: run an example's entry point exactly as its `start`
// script does (TypeScript sources, no build) and watch its output.
import { type ChildProcess, spawn } from 'node:child_process';

export interface ExampleRun {
  child: ChildProcess;
  /** Everything printed so far. */
  readonly stdout: string;
  readonly stderr: string;
  /** Resolves once stdout matches (checked on every chunk); rejects if the process exits first. */
  waitFor(pattern: RegExp, timeoutMs?: number): Promise<RegExpMatchArray>;
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

export function startExample(
  dir: string,
  args: string[] = [],
  options: { entry?: string; env?: NodeJS.ProcessEnv } = {},
): ExampleRun {
  const child = spawn(
    process.execPath,
    ['--conditions=@mesh/source', '--import', 'tsx', options.entry ?? 'src/main.ts', ...args],
    { cwd: dir, env: { ...process.env, NO_COLOR: '1', ...options.env }, stdio: 'pipe' },
  );
  let stdout = '';
  let stderr = '';
  const listeners = new Set<() => void>();
  child.stdout.setEncoding('utf8').on('data', (d: string) => {
    stdout += d;
    for (const l of listeners) l();
  });
  child.stderr.setEncoding('utf8').on('data', (d: string) => {
    stderr += d;
  });
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    child.once('close', (code, signal) => {
      for (const l of listeners) l();
      resolve({ code, signal });
    }),
  );
  return {
    child,
    get stdout() {
      return stdout;
    },
    get stderr() {
      return stderr;
    },
    exited,
    waitFor(pattern, timeoutMs = 20_000) {
      return new Promise((resolve, reject) => {
        const timer = setTimeout(() => {
          listeners.delete(check);
          reject(
            new Error(`timed out waiting for ${pattern}\nstdout:\n${stdout}\nstderr:\n${stderr}`),
          );
        }, timeoutMs);
        const check = () => {
          const m = stdout.match(pattern);
          if (m) {
            clearTimeout(timer);
            listeners.delete(check);
            resolve(m);
          } else if (child.exitCode !== null || child.signalCode !== null) {
            clearTimeout(timer);
            listeners.delete(check);
            reject(new Error(`exited before ${pattern}\nstdout:\n${stdout}\nstderr:\n${stderr}`));
          }
        };
        listeners.add(check);
        check();
      });
    },
  };
}

/** Run an example to completion. */
export async function runExample(
  dir: string,
  args: string[] = [],
  options: { entry?: string; env?: NodeJS.ProcessEnv; input?: string } = {},
): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const run = startExample(dir, args, options);
  run.child.stdin?.end(options.input ?? '');
  const { code } = await run.exited;
  return { code, stdout: run.stdout, stderr: run.stderr };
}
