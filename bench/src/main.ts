/**
 * `pnpm bench [filter] [--quick] [--profile] [--list] [--out <dir>]`: run the bench scenarios
 * and write results to `bench/results/`.
 */

import { resolve } from 'node:path';
import { parseArgs } from 'node:util';
import {
  DEFAULT_OUT,
  loadScenarios,
  runBench,
  scenarioBudgetMs,
  unmetRequirement,
} from './runner.js';

const HELP = `Usage: pnpm bench [filter] [options]

Runs every scenario in bench/src/scenarios (or those whose name matches the regex
filter, e.g. "hbone" or "^baseline/") and writes results to bench/results/:
latest.json, latest.md, runs/<time>.json and SVG charts.

Options:
  --quick          smallest counts, each scenario once (CI smoke; whole run < 2 min)
  --profile        write CPU profiles (--cpu-prof) of proxy processes to <out>/profiles/
  --list           list scenarios, whether they can run here, and exit
  --out <dir>      results directory (default ${DEFAULT_OUT})
  -h, --help       this text

Exit code: 0 when every selected scenario ran or was skipped with a reason, 1 when one
failed or ran out of time, 2 on bad usage.`;

async function main(): Promise<number> {
  let parsed: ReturnType<typeof parse>;
  function parse() {
    return parseArgs({
      allowPositionals: true,
      options: {
        quick: { type: 'boolean', default: false },
        profile: { type: 'boolean', default: false },
        list: { type: 'boolean', default: false },
        out: { type: 'string' },
        help: { type: 'boolean', short: 'h', default: false },
      },
    });
  }
  try {
    parsed = parse();
  } catch (err) {
    process.stderr.write(`${(err as Error).message}\n\n${HELP}\n`);
    return 2;
  }
  const { values, positionals } = parsed;
  if (values.help) {
    process.stdout.write(`${HELP}\n`);
    return 0;
  }
  const filter = positionals.join('|') || undefined;
  if (filter) {
    try {
      new RegExp(filter);
    } catch (err) {
      process.stderr.write(`bad filter: ${(err as Error).message}\n`);
      return 2;
    }
  }
  if (values.list) {
    for (const l of await loadScenarios()) {
      if (!l.scenario) {
        process.stdout.write(`${l.file}  (cannot load: ${l.error})\n`);
        continue;
      }
      const s = l.scenario;
      if (filter && !new RegExp(filter, 'i').test(s.name)) continue;
      const unmet = await unmetRequirement(s);
      process.stdout.write(
        `${s.name.padEnd(28)} ${s.kind.padEnd(5)} ${String(Math.round(scenarioBudgetMs(s, values.quick) / 1000)).padStart(4)} s  ${s.description}${unmet ? `  [skips: ${unmet}]` : ''}\n`,
      );
    }
    return 0;
  }
  const controller = new AbortController();
  const interrupt = () => {
    if (controller.signal.aborted) process.exit(130);
    process.stderr.write(
      '\ninterrupted: stopping the current scenario (Ctrl-C again to quit now)\n',
    );
    controller.abort(new Error('interrupted'));
  };
  process.on('SIGINT', interrupt);
  process.on('SIGTERM', interrupt);
  // pnpm runs the script in bench/; a relative --out means relative to where pnpm was invoked.
  const out = values.out ? resolve(process.env.INIT_CWD ?? process.cwd(), values.out) : DEFAULT_OUT;
  const run = await runBench({
    filter,
    quick: values.quick,
    profile: values.profile,
    out,
    signal: controller.signal,
  });
  process.stderr.write(`results: ${out.replace(/\/$/, '')}/latest.md\n`);
  return run.scenarios.some((s) => s.status === 'failed' || s.status === 'timeout') ? 1 : 0;
}

process.exitCode = await main();
