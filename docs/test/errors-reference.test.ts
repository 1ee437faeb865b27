import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { collectErrorCodes, referencePath, renderReference } from '../scripts/errors-reference.js';

describe('the errors reference', () => {
  it('documents every error code of every package and no code that no longer exists', async () => {
    const packages = await collectErrorCodes();
    const documented = new Set(
      readFileSync(referencePath, 'utf8').match(/`(ERR|WARN)_[A-Z0-9_]+`/g) ?? [],
    );
    const defined = new Set(
      packages.flatMap((p) =>
        [...Object.keys(p.codes), ...Object.keys(p.warnings ?? {})].map((c) => `\`${c}\``),
      ),
    );
    expect(
      [...defined].filter((c) => !documented.has(c)),
      'undocumented codes',
    ).toEqual([]);
    expect(
      [...documented].filter((c) => !defined.has(c)),
      'documented codes that do not exist',
    ).toEqual([]);
  });

  it('is exactly what the generator writes (run `pnpm --filter @mesh/docs errors`)', async () => {
    expect(readFileSync(referencePath, 'utf8')).toBe(renderReference(await collectErrorCodes()));
  });

  it('gives every code a meaning', async () => {
    for (const p of await collectErrorCodes()) {
      for (const [code, meaning] of Object.entries(p.codes)) {
        expect(meaning.length, `${code} needs a meaning`).toBeGreaterThan(10);
        expect(code).toMatch(/^ERR_[A-Z0-9_]+$/);
      }
      for (const [code, meaning] of Object.entries(p.warnings ?? {})) {
        expect(meaning.length, `${code} needs a meaning`).toBeGreaterThan(10);
        expect(code).toMatch(/^WARN_[A-Z0-9_]+$/);
      }
    }
  });
});
