import { spawn } from 'node:child_process';
import { readFile, rm, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { RBAC_ERROR_CODES, RBAC_WARNING_CODES } from '../src/index.js';

const pkg = dirname(dirname(fileURLToPath(import.meta.url)));

describe('README', () => {
  it('documents every error and warning code, and no others', async () => {
    const readme = await readFile(join(pkg, 'README.md'), 'utf8');
    const documented = new Set(
      readme.match(/`(ERR|WARN)_RBAC_[A-Z0-9_]+`/g)?.map((c) => c.slice(1, -1)),
    );
    const codes = [...Object.keys(RBAC_ERROR_CODES), ...Object.keys(RBAC_WARNING_CODES)];
    for (const code of codes) expect(documented, code).toContain(code);
    for (const code of documented) expect(codes, code).toContain(code);
  });

  it('the library example runs and prints what the README says', async () => {
    const readme = await readFile(join(pkg, 'README.md'), 'utf8');
    const code = readme.match(/```ts\n([\s\S]*?)```/)?.[1];
    expect(code).toBeDefined();
    const file = join(pkg, `.readme-example-${process.pid}.ts`);
    await writeFile(file, code!);
    try {
      const out = await new Promise<{ code: number | null; stdout: string; stderr: string }>(
        (resolve, reject) => {
          const child = spawn(
            process.execPath,
            ['--conditions=@mesh/source', '--import', 'tsx', file],
            { cwd: pkg },
          );
          let stdout = '';
          let stderr = '';
          child.stdout.setEncoding('utf8').on('data', (d) => (stdout += d));
          child.stderr.setEncoding('utf8').on('data', (d) => (stderr += d));
          child.on('error', reject);
          child.on('close', (c) => resolve({ code: c, stdout, stderr }));
        },
      );
      expect(out.stderr).toBe('');
      expect(out.code).toBe(0);
      const expected = code!.match(/\/\/ (false allow policies exist.*)\n/)?.[1];
      expect(out.stdout.trim().split('\n').at(-1)).toBe(expected);
    } finally {
      await rm(file, { force: true });
    }
  });
});
