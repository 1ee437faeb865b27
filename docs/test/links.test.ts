import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { dirname, join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

const root = fileURLToPath(new URL('../..', import.meta.url));

function markdown(dir: string): string[] {
  return readdirSync(dir).flatMap((f) => {
    const p = join(dir, f);
    if (f === 'node_modules' || f === 'api') return [];
    if (statSync(p).isDirectory()) return markdown(p);
    return f.endsWith('.md') ? [p] : [];
  });
}

const pages = [
  ...markdown(join(root, 'docs')),
  ...markdown(join(root, 'examples')),
  join(root, 'README.md'),
];

describe('the docs links', () => {
  it('point at files that exist (relative links in docs/, examples/ and the README)', () => {
    const broken: string[] = [];
    for (const page of pages) {
      const text = readFileSync(page, 'utf8').replace(/```[\s\S]*?```/g, '');
      for (const [, target] of text.matchAll(/\]\(([^)\s]+)\)/g)) {
        if (/^[a-z]+:/.test(target) || target.startsWith('#')) continue;
        const path = target.split('#')[0];
        if (!existsSync(join(dirname(page), path)))
          broken.push(`${relative(root, page)} -> ${target}`);
      }
    }
    expect(pages.length).toBeGreaterThan(15);
    expect(broken).toEqual([]);
  });
});
