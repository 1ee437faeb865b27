import { execFile } from 'node:child_process';
import { subscribe, unsubscribe } from 'node:diagnostics_channel';
import { readFileSync } from 'node:fs';
import { rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { LocalCa, SPIFFE_ERROR_CODES, SpiffeId } from '@mesh/spiffe';
import { describe, expect, it } from 'vitest';

const exec = promisify(execFile);
const root = join(import.meta.dirname, '..');
const readme = readFileSync(join(root, 'README.md'), 'utf8');

describe('README', () => {
  it('documents every error code, and no code that does not exist', () => {
    const documented = new Set(
      readme.match(/`ERR_SPIFFE_[A-Z0-9_]+`/g)?.map((c) => c.slice(1, -1)),
    );
    const defined = Object.keys(SPIFFE_ERROR_CODES);
    expect(defined.filter((c) => !documented.has(c))).toEqual([]);
    expect([...documented].filter((c) => !defined.includes(c))).toEqual([]);
  });

  it('has a runnable example that runs', async () => {
    const example = readme.match(/```ts\n([\s\S]*?)```/)?.[1];
    expect(example).toBeDefined();
    // Inside the package directory, so `@mesh/spiffe` resolves to this package.
    const file = join(root, '.readme-example.test-tmp.mts');
    await writeFile(file, example!);
    try {
      const { stdout } = await exec(
        process.execPath,
        ['--conditions=@mesh/source', '--import', 'tsx', file],
        { cwd: root, encoding: 'utf8' },
      );
      expect(stdout).toMatch(/^spiffe:\/\/cluster\.local\/ns\/default\/sa\/demo \d{4}-/m);
      expect(stdout).toMatch(
        /rotated spiffe:\/\/cluster\.local\/ns\/default\/sa\/demo: serial [0-9a-f]+/,
      );
      expect(stdout).toMatch(/verified spiffe:\/\/cluster\.local\/ns\/default\/sa\/demo/);
    } finally {
      await rm(file, { force: true });
    }
  });

  it('documents the diagnostics channels that are published', async () => {
    const seen: unknown[] = [];
    const onIssued = (m: unknown) => seen.push(m);
    subscribe('mesh:spiffe:issued', onIssued);
    try {
      await LocalCa.create().issue(SpiffeId.parse('spiffe://cluster.local/ns/a/sa/b'));
    } finally {
      unsubscribe('mesh:spiffe:issued', onIssued);
    }
    expect(seen).toMatchObject([{ identity: 'spiffe://cluster.local/ns/a/sa/b' }]);
    for (const name of ['issued', 'ca-request', 'ca-error', 'ca-serve', 'rotated', 'fetch-error']) {
      expect(readme).toContain(`mesh:spiffe:${name}`);
    }
  });
});
