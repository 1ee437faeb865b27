#!/usr/bin/env node
// The published binary runs the compiled CLI. In the workspace, run the sources instead:
//   node --conditions=@mesh/source --import tsx packages/ztunnel/src/main.ts
import { main } from '../dist/cli.js';

process.exitCode = await main(process.argv.slice(2), { handleSignals: true });
