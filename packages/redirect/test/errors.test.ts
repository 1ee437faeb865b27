import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { REDIRECT_ERROR_CODES, RedirectError } from '../src/index.js';

describe('RedirectError', () => {
  it('every code in the table is documented in the README with the same sentence, and no other', () => {
    const readme = readFileSync(new URL('../README.md', import.meta.url), 'utf8');
    const rows = [...readme.matchAll(/^\| `(ERR_REDIRECT_[A-Z_]+)` *\| (.+?) *\|$/gm)].map((m) => [
      m[1],
      m[2],
    ]);
    expect(Object.fromEntries(rows)).toEqual(REDIRECT_ERROR_CODES);
  });

  it('is recognised across duplicated package copies by its brand, not its class', () => {
    const err = new RedirectError('ERR_REDIRECT_NO_FD', 'x');
    expect(err).toBeInstanceOf(RedirectError);
    expect(err).toBeInstanceOf(Error);
    const foreign = Object.assign(new Error('y'), {
      [Symbol.for('@mesh/redirect.RedirectError')]: true,
    });
    expect(foreign).toBeInstanceOf(RedirectError);
    expect(new Error('z')).not.toBeInstanceOf(RedirectError);
    expect(err.name).toBe('RedirectError');
  });
});
