import { spawn } from 'node:child_process';
import { RedirectError } from './errors.js';
import type { NetnsRef } from './sockets.js';

export interface CommandResult {
  stdout: string;
  stderr: string;
}

/** A failed command, as the `cause` of a RedirectError. `code` is `EPERM` when it lacked privilege. */
export interface CommandFailure extends Error {
  code?: string;
  command: string[];
  exitCode: number | null;
  stderr: string;
}

const permissionDenied =
  /permission denied|operation not permitted|you must be root|not permitted/i;

/** `/var/run/netns/<name>` for a bare name, `/proc/<pid>/fd/<n>` for an fd, a path as is. */
export function netnsPath(netns: NetnsRef): string {
  if (typeof netns === 'number') return `/proc/${process.pid}/fd/${netns}`;
  return netns.includes('/') ? netns : `/var/run/netns/${netns}`;
}

/** Runs `argv` (inside `netns` via nsenter when given), feeding `input` on stdin. */
export function run(
  argv: string[],
  options: { netns?: NetnsRef | undefined; input?: string; signal?: AbortSignal | undefined } = {},
): Promise<CommandResult> {
  const full =
    options.netns === undefined
      ? argv
      : ['nsenter', `--net=${netnsPath(options.netns)}`, '--', ...argv];
  return new Promise((resolve, reject) => {
    if (options.signal?.aborted) {
      reject(options.signal.reason);
      return;
    }
    const child = spawn(full[0] as string, full.slice(1), {
      stdio: ['pipe', 'pipe', 'pipe'],
      signal: options.signal,
      env: { ...process.env, LC_ALL: 'C' },
    });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (d: string) => {
      stdout += d;
    });
    child.stderr.setEncoding('utf8').on('data', (d: string) => {
      stderr += d;
    });
    child.stdin.on('error', () => {
      // the exit status tells what went wrong
    });
    child.stdin.end(options.input ?? '');
    child.on('error', (err: NodeJS.ErrnoException) => {
      if (err.name === 'AbortError') {
        reject(options.signal?.reason ?? err);
      } else if (err.code === 'ENOENT') {
        reject(
          new RedirectError(
            'ERR_REDIRECT_COMMAND_MISSING',
            `${full[0]} is not installed (needed for ${argv[0]})`,
            {
              cause: err,
            },
          ),
        );
      } else {
        reject(err);
      }
    });
    child.on('close', (exitCode) => {
      if (exitCode === 0) {
        resolve({ stdout, stderr });
        return;
      }
      if (exitCode === 127 && /No such file|not found/i.test(stderr)) {
        reject(
          new RedirectError(
            'ERR_REDIRECT_COMMAND_MISSING',
            `${argv[0]} is not installed: ${stderr.trim()}`,
          ),
        );
        return;
      }
      const failure = new Error(
        `${full.join(' ')} exited with ${exitCode}: ${stderr.trim() || '(no output)'}`,
      ) as CommandFailure;
      failure.command = full;
      failure.exitCode = exitCode;
      failure.stderr = stderr;
      if (permissionDenied.test(stderr)) failure.code = 'EPERM';
      reject(failure);
    });
  });
}
