import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

const pkg = join(dirname(fileURLToPath(import.meta.url)), '..');

describe('generated protobuf code', () => {
  it('is what `pnpm generate` produces from proto/ (regenerate and commit when this fails)', () => {
    const out = mkdtempSync(join(tmpdir(), 'xds-gen-'));
    try {
      execFileSync(process.execPath, [join(pkg, 'scripts/generate.mjs'), out], { stdio: 'pipe' });
      for (const file of ['proto.js', 'proto.d.ts']) {
        const fresh = readFileSync(join(out, file), 'utf8');
        const committed = readFileSync(join(pkg, 'src/gen', file), 'utf8');
        expect(fresh === committed, `src/gen/${file} is stale`).toBe(true);
      }
    } finally {
      rmSync(out, { recursive: true, force: true });
    }
  });
});
