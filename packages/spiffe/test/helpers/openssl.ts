import { execFile } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';

const run = promisify(execFile);

/** Runs `openssl` with `files` written to a scratch directory; `{dir}` in args is replaced by it. */
export async function openssl(
  args: string[],
  files: Record<string, string> = {},
): Promise<{ stdout: string; stderr: string; code: number }> {
  const dir = await mkdtemp(join(tmpdir(), 'spiffe-openssl-'));
  try {
    for (const [name, content] of Object.entries(files)) await writeFile(join(dir, name), content);
    try {
      const { stdout, stderr } = await run(
        'openssl',
        args.map((a) => a.replaceAll('{dir}', dir)),
        { encoding: 'utf8' },
      );
      return { stdout, stderr, code: 0 };
    } catch (err) {
      const e = err as { stdout?: string; stderr?: string; code?: number };
      return { stdout: e.stdout ?? '', stderr: e.stderr ?? '', code: e.code ?? 1 };
    }
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

export async function tempDir(prefix = 'spiffe-test-'): Promise<string> {
  return mkdtemp(join(tmpdir(), prefix));
}
