import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { renderConfigurationReference } from '../src/config/reference.js';
import { SETTINGS, ZTUNNEL_ERROR_CODES } from '../src/index.js';

describe('configuration reference', () => {
  it('docs/reference/configuration.md matches the settings table (run `pnpm --filter @mesh/ztunnel docs:config`)', () => {
    const file = readFileSync(
      new URL('../../../docs/reference/configuration.md', import.meta.url),
      'utf8',
    );
    expect(file).toBe(renderConfigurationReference());
  });

  it('documents every setting, and every environment variable in the README', () => {
    const readme = readFileSync(new URL('../README.md', import.meta.url), 'utf8');
    for (const s of SETTINGS) {
      expect(renderConfigurationReference()).toContain(`--${s.flag}`);
      if (s.env) expect(readme).toContain(s.env);
    }
  });

  it('lists every error code in the README', () => {
    const readme = readFileSync(new URL('../README.md', import.meta.url), 'utf8');
    const listed = [...readme.matchAll(/^\| `(ERR_ZTUNNEL_\w+)` *\|/gm)].map((m) => m[1]);
    expect(listed).toEqual(Object.keys(ZTUNNEL_ERROR_CODES));
  });
});
