#!/usr/bin/env node
// `pnpm demo`: the main job a newcomer runs first. Runs the demo from TypeScript sources,
// so it needs no build step.
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';

const entry = fileURLToPath(new URL('../packages/spiffe/demo/identity-demo.ts', import.meta.url));
const run = spawnSync(
  process.execPath,
  ['--conditions=@mesh/source', '--import', 'tsx', entry, ...process.argv.slice(2)],
  { stdio: 'inherit' },
);
process.exit(run.status ?? 1);
