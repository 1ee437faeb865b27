// Writes docs/reference/configuration.md from the settings table.
//   pnpm --filter @mesh/ztunnel docs:config
import { writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { renderConfigurationReference } from '../src/config/reference.js';

const target = fileURLToPath(new URL('../../../docs/reference/configuration.md', import.meta.url));
writeFileSync(target, renderConfigurationReference());
console.log(`wrote ${target}`);
