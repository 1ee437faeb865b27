// Entry point for running from sources: node --conditions=@mesh/source --import tsx src/main.ts
import { main } from './cli.js';

process.exitCode = await main(process.argv.slice(2), { handleSignals: true });
