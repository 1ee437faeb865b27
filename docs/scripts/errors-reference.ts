/**
 * Builds `docs/reference/errors.md` from the `<PKG>_ERROR_CODES` tables every package exports,
 * so the reference and the code cannot drift: the docs test fails when the file is stale.
 *
 *   pnpm --filter @mesh/docs errors     # rewrite the reference
 */
import { existsSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
export const referencePath = join(root, 'docs', 'reference', 'errors.md');

export interface PackageCodes {
  packageName: string;
  className: string;
  codes: Record<string, string>;
  /** Warning codes (`<PKG>_WARNING_CODES`), when the package reports warnings. */
  warnings?: Record<string, string>;
}

/** Every package's error-code table, read through its public entry point. */
export async function collectErrorCodes(): Promise<PackageCodes[]> {
  const result: PackageCodes[] = [];
  for (const dir of readdirSync(join(root, 'packages')).sort()) {
    const pkgDir = join(root, 'packages', dir);
    const errorsFile = join(pkgDir, 'src', 'errors.ts');
    if (!existsSync(errorsFile)) continue;
    const pkg = JSON.parse(readFileSync(join(pkgDir, 'package.json'), 'utf8')) as { name: string };
    const mod = (await import(pathToFileURL(join(pkgDir, 'src', 'index.ts')).href)) as Record<
      string,
      unknown
    >;
    const tableName = Object.keys(mod).find((k) => k.endsWith('_ERROR_CODES'));
    if (!tableName)
      throw new Error(`${pkg.name} does not export a *_ERROR_CODES table from its index`);
    const source = readFileSync(errorsFile, 'utf8');
    const className = /export class (\w+Error) extends Error/.exec(source)?.[1] ?? 'Error';
    const warningTable = Object.keys(mod).find((k) => k.endsWith('_WARNING_CODES'));
    result.push({
      packageName: pkg.name,
      className,
      codes: mod[tableName] as Record<string, string>,
      ...(warningTable ? { warnings: mod[warningTable] as Record<string, string> } : {}),
    });
  }
  return result;
}

export function renderReference(packages: PackageCodes[]): string {
  const lines = [
    '# Error codes',
    '',
    'Every error a `@mesh` package throws or emits carries a stable `code`. Match on `err.code`,',
    'never on the message. Each package has one error class; `instanceof` works across',
    "duplicated copies of a package. Errors from the operating system keep Node's own shape",
    '(`code` such as `EPERM`, `errno`, `syscall`).',
    '',
    'Warnings (`WARN_*`) are not thrown: they are returned next to a result (for example the',
    'policies istiod would translate with a field dropped) so a tool can show them.',
    '',
    "<!-- Generated from the packages' *_ERROR_CODES tables by `pnpm --filter @mesh/docs errors`. -->",
    '',
  ];
  for (const p of packages) {
    lines.push(`## ${p.packageName} (\`${p.className}\`)`, '', '| code | meaning |', '|---|---|');
    for (const [code, meaning] of Object.entries(p.codes)) {
      lines.push(`| \`${code}\` | ${meaning.replace(/\|/g, '\\|')} |`);
    }
    lines.push('');
    if (p.warnings) {
      lines.push('Warnings:', '', '| code | meaning |', '|---|---|');
      for (const [code, meaning] of Object.entries(p.warnings)) {
        lines.push(`| \`${code}\` | ${meaning.replace(/\|/g, '\\|')} |`);
      }
      lines.push('');
    }
  }
  return lines.join('\n');
}

if (process.argv.includes('--write')) {
  writeFileSync(referencePath, renderReference(await collectErrorCodes()));
  console.log(`wrote ${referencePath}`);
}
