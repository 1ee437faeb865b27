import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

const root = fileURLToPath(new URL('../..', import.meta.url));
const page = readFileSync(join(root, 'docs', 'reference', 'diagnostics-channels.md'), 'utf8');

function sourceFiles(dir: string): string[] {
  return readdirSync(dir).flatMap((f) => {
    const p = join(dir, f);
    if (statSync(p).isDirectory()) return f === 'gen' ? [] : sourceFiles(p);
    return p.endsWith('.ts') ? [p] : [];
  });
}

/** Channel names as the code spells them: `mesh:<pkg>:<event>` string literals, by package. */
function channelsInCode(): Map<string, string> {
  const found = new Map<string, string>();
  for (const pkg of readdirSync(join(root, 'packages'))) {
    const src = join(root, 'packages', pkg, 'src');
    if (!statSync(src, { throwIfNoEntry: false })?.isDirectory()) continue;
    for (const file of sourceFiles(src)) {
      for (const m of readFileSync(file, 'utf8').matchAll(
        /['"`](mesh:[a-z0-9-]+:[a-z0-9-]+)['"`]/g,
      )) {
        found.set(m[1], pkg);
      }
    }
  }
  return found;
}

const documented = new Set(
  [...page.matchAll(/^\| `(mesh:[a-z0-9-]+:[a-z0-9-]+)` \|/gm)].map((m) => m[1]),
);

describe('the diagnostics channels reference', () => {
  it('lists every channel the packages publish on, and no other', () => {
    const inCode = channelsInCode();
    expect(inCode.size).toBeGreaterThan(10);
    expect(
      [...inCode.keys()].filter((c) => !documented.has(c)),
      'undocumented channels',
    ).toEqual([]);
    expect(
      [...documented].filter((c) => !inCode.has(c)),
      'documented channels not in the code',
    ).toEqual([]);
  });

  it("agrees with each package's README", () => {
    for (const [channel, pkg] of channelsInCode()) {
      const readme = readFileSync(join(root, 'packages', pkg, 'README.md'), 'utf8');
      expect(readme, `${pkg}/README.md names ${channel}`).toContain(channel);
    }
  });
});
