#!/usr/bin/env node
// `pnpm demo`: the first thing a newcomer runs. Runs the ztunnel mesh demo from TypeScript
// sources (tsx + the @mesh/source condition), so it needs no build step.
//   pnpm demo           run the story and exit 0 when every step behaved as expected
//   pnpm demo --keep    keep the mesh running and print commands to explore it
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';

const entry = fileURLToPath(new URL('../packages/ztunnel/demo/mesh-demo.ts', import.meta.url));
const run = spawnSync(
  process.execPath,
  ['--conditions=@mesh/source', '--import', 'tsx', entry, ...process.argv.slice(2)],
  { stdio: 'inherit' },
);
process.exit(run.status ?? 1);
