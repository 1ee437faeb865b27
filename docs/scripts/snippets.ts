/**
 * Keeps the code in the guides identical to the runnable files in `docs/snippets/`. A guide
 * includes a snippet with a marker line followed by a fenced block:
 *
 *     <!-- snippet: hbone-tunnel.ts -->
 *     ```ts
 *     ...the file, verbatim...
 *     ```
 *
 * `pnpm --filter @mesh/docs snippets` rewrites the blocks from the files; the docs test fails
 * when a block differs from its file, and runs every file.
 */
import { readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const docs = join(dirname(fileURLToPath(import.meta.url)), '..');
export const snippetsDir = join(docs, 'snippets');
export const guidesDir = join(docs, 'guides');

// The block ends at the first line that starts with ``` (an empty block closes at once).
const MARKER = /<!-- snippet: ([\w.-]+) -->\n```ts\n(?:.*\n)*?```(?=\n|$)/g;

export function snippetFiles(): string[] {
  return readdirSync(snippetsDir)
    .filter((f) => f.endsWith('.ts'))
    .sort();
}

export function guideFiles(): string[] {
  return readdirSync(guidesDir)
    .filter((f) => f.endsWith('.md'))
    .sort()
    .map((f) => join(guidesDir, f));
}

/** The guide text with every snippet block replaced by its file. */
export function withSnippets(text: string): string {
  return text.replace(MARKER, (_, name: string) => {
    const code = readFileSync(join(snippetsDir, name), 'utf8').trimEnd();
    return `<!-- snippet: ${name} -->\n\`\`\`ts\n${code}\n\`\`\``;
  });
}

/** Snippet names each guide includes. */
export function includedSnippets(text: string): string[] {
  return [...text.matchAll(MARKER)].map((m) => m[1]);
}

if (process.argv.includes('--write')) {
  for (const guide of guideFiles()) {
    const text = readFileSync(guide, 'utf8');
    const next = withSnippets(text);
    if (next !== text) {
      writeFileSync(guide, next);
      console.log(`updated ${guide}`);
    }
  }
}
