import { readFile } from 'node:fs/promises';
import { describe, expect, it } from 'vitest';
import {
  ACCESS_LOG_CHANNEL,
  BUILD_METRIC,
  METRICS_ERROR_CODES,
  RESPONSE_FLAGS,
  TRAFFIC_LABEL_NAMES,
  TRAFFIC_METRICS,
  XDS_METRICS,
} from '../src/index.js';

// Table cells are padded by the formatter; compare with runs of spaces collapsed.
const readme = (await readFile(new URL('../README.md', import.meta.url), 'utf8')).replace(
  / +/g,
  ' ',
);

describe('README', () => {
  it('documents every error code with its meaning', () => {
    for (const [code, meaning] of Object.entries(METRICS_ERROR_CODES)) {
      expect(readme, code).toContain(`| \`${code}\` | ${meaning} |`);
    }
  });

  it('documents every series with its type and HELP text, and every label and flag', () => {
    for (const def of [
      ...Object.values(TRAFFIC_METRICS),
      ...Object.values(XDS_METRICS),
      BUILD_METRIC,
    ]) {
      expect(readme, def.name).toMatch(new RegExp(`\\| \`${def.name}\` \\| ${def.type}`));
      expect(readme, def.name).toContain(def.help);
      expect(def.help.includes('(unstable)'), def.name).toBe(!def.stable);
    }
    for (const label of TRAFFIC_LABEL_NAMES) expect(readme, label).toContain(`\`${label}\``);
    for (const flag of RESPONSE_FLAGS) expect(readme, flag).toContain(`\`${flag}\``);
    expect(readme).toContain(ACCESS_LOG_CHANNEL);
  });
});
