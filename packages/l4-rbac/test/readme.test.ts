import { spawn } from 'node:child_process';
import { readFile, rm, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { RBAC_ERROR_CODES, RBAC_WARNING_CODES } from '../src/index.js';

const pkg = dirname(dirname(fileURLToPath(import.meta.url)));

interface Example {
  args: string[];
  output: string;
  exitCode?: number;
}

/** The `$ mesh-policy-check …` commands of the README's console blocks with their output. */
function consoleExamples(readme: string): Example[] {
  const examples: Example[] = [];
  for (const block of readme.match(/```console\n([\s\S]*?)```/g) ?? []) {
    const lines = block.split('\n').slice(1, -1);
    for (let i = 0; i < lines.length; i++) {
      const line = lines[i]!;
      if (line === '$ echo $?') {
        examples.at(-1)!.exitCode = Number(lines[++i]);
        continue;
      }
      if (!line.startsWith('$ mesh-policy-check ')) continue;
      let command = line.slice(2);
      while (command.endsWith('\\')) command = `${command.slice(0, -1)} ${lines[++i]!.trim()}`;
      const output: string[] = [];
      while (i + 1 < lines.length && !lines[i + 1]!.startsWith('$ ') && lines[i + 1] !== '') {
        output.push(lines[++i]!);
      }
      examples.push({ args: command.split(/\s+/).slice(1), output: output.join('\n') });
    }
  }
  return examples;
}

function spawnNode(
  args: string[],
): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(
      process.execPath,
      ['--conditions=@mesh/source', '--import', 'tsx', ...args],
      { cwd: pkg },
    );
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (d) => (stdout += d));
    child.stderr.setEncoding('utf8').on('data', (d) => (stderr += d));
    child.on('error', reject);
    child.on('close', (c) => resolve({ code: c, stdout, stderr }));
  });
}

describe('README', () => {
  it('every CLI example prints exactly what the README shows', async () => {
    const readme = await readFile(join(pkg, 'README.md'), 'utf8');
    const examples = consoleExamples(readme);
    expect(examples.length).toBeGreaterThanOrEqual(4);
    const results = await Promise.all(
      examples.map((e) => spawnNode([join(pkg, 'src', 'bin.ts'), ...e.args])),
    );
    examples.forEach((e, i) => {
      const r = results[i]!;
      expect(`${r.stderr}${r.stdout}`.trimEnd(), e.args.join(' ')).toBe(e.output);
      if (e.exitCode !== undefined) expect(r.code).toBe(e.exitCode);
    });
  }, 120_000);

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
      const out = await spawnNode([file]);
      expect(out.stderr).toBe('');
      expect(out.code).toBe(0);
      const expected = code!.match(/\/\/ (false allow policies exist.*)\n/)?.[1];
      expect(out.stdout.trim().split('\n').at(-1)).toBe(expected);
    } finally {
      await rm(file, { force: true });
    }
  });
});
