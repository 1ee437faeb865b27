/**
 * The bench runner: discover scenarios, filter them, run each within its time budget, record
 * skips and failures with their reasons, and write the results (JSON, Markdown, SVG).
 */

import { constants } from 'node:fs';
import { access, mkdir, mkdtemp, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { delimiter, join, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { buildCharts } from './charts.js';
import { killAllChildren } from './lib/children.js';
import { hotFunctions, summarizeProfile } from './lib/profile-summary.js';
import { suiteSizes } from './lib/suite.js';
import { machineInfo } from './machine.js';
import {
  type RunRecord,
  renderMarkdown,
  renderReadmeSection,
  replaceReadmeSection,
  type ScenarioRecord,
  validateMeasurements,
  withRatios,
} from './results.js';
import type { Scenario, ScenarioContext } from './scenario.js';

export const SCENARIO_DIR = fileURLToPath(new URL('./scenarios/', import.meta.url));
export const DEFAULT_OUT = fileURLToPath(new URL('../results/', import.meta.url));

/** Whole-run limits: a full run stays under 10 minutes here, `--quick` under 2. */
export const RUN_BUDGET_MS = { full: 9.5 * 60_000, quick: 110_000 };
const GRACE_MS = 5_000;

export interface RunOptions {
  /** Regex on scenario names (`hbone`, `^baseline/`). */
  filter?: string;
  quick?: boolean;
  profile?: boolean;
  /** Results directory (default `bench/results`). */
  out?: string;
  /** Scenario directory (default `bench/src/scenarios`). */
  scenarioDir?: string;
  /** Override the whole-run budget. */
  runBudgetMs?: number;
  /** Cap every scenario's budget (tests). */
  maxScenarioMs?: number;
  /** How long a scenario may take to stop after its signal aborted (default 5 s). */
  graceMs?: number;
  /** Progress output (default: stderr). */
  log?: (line: string) => void;
  signal?: AbortSignal;
}

export interface LoadedScenario {
  file: string;
  scenario?: Scenario;
  /** Why the module could not be used. */
  error?: string;
}

function checkShape(s: unknown): string | undefined {
  const x = s as Partial<Scenario> | undefined;
  if (!x || typeof x !== 'object') return 'default export is not a Scenario object';
  if (typeof x.name !== 'string' || !/^[\w.-]+\/[\w.-]+/.test(x.name))
    return `name "${x.name}" is not "<area>/<what>"`;
  if (x.kind !== 'micro' && x.kind !== 'e2e') return `kind must be 'micro' or 'e2e'`;
  if (typeof x.run !== 'function') return 'run is not a function';
  return undefined;
}

/** Import every `*.ts` in the scenario directory (sorted by file name). */
export async function loadScenarios(dir = SCENARIO_DIR): Promise<LoadedScenario[]> {
  const files = (await readdir(dir))
    .filter((f) => /\.ts$/.test(f) && !/\.(d|test)\.ts$/.test(f))
    .sort();
  const out: LoadedScenario[] = [];
  for (const file of files) {
    try {
      const mod = (await import(pathToFileURL(join(dir, file)).href)) as { default?: unknown };
      const problem = checkShape(mod.default);
      out.push(problem ? { file, error: problem } : { file, scenario: mod.default as Scenario });
    } catch (err) {
      out.push({ file, error: `failed to load: ${(err as Error).message}` });
    }
  }
  return out;
}

async function onPath(command: string): Promise<boolean> {
  for (const dir of (process.env.PATH ?? '').split(delimiter)) {
    if (!dir) continue;
    try {
      await access(join(dir, command), constants.X_OK);
      return true;
    } catch {}
  }
  return false;
}

/** Why a scenario cannot run here, or undefined. */
export async function unmetRequirement(s: Scenario): Promise<string | undefined> {
  const req = s.requires ?? {};
  if (req.root && process.getuid?.() !== 0) return 'needs root';
  const missing: string[] = [];
  for (const c of req.commands ?? []) if (!(await onPath(c))) missing.push(c);
  if (missing.length)
    return `missing command${missing.length > 1 ? 's' : ''}: ${missing.join(', ')}`;
  if (req.check) {
    try {
      return (await req.check()) || undefined;
    } catch (err) {
      return `requirement check failed: ${(err as Error).message}`;
    }
  }
  return undefined;
}

/** A scenario's budget: its own, or 60 s (micro) / 180 s (e2e); a fifth (≥ 30 s) with --quick. */
export function scenarioBudgetMs(s: Scenario, quick: boolean): number {
  const full = s.budgetMs ?? (s.kind === 'micro' ? 60_000 : 180_000);
  return quick ? Math.max(30_000, Math.round(full / 5)) : full;
}

/** The method lines written into every result. */
export function methodLines(quick: boolean): string[] {
  const z = suiteSizes(quick);
  return [
    'Every figure is measured beside its baselines in the same run and the same minute (paths run in turn for each figure); read the ratios, not the absolute numbers: the machine is shared and noisy.',
    'Traffic only on loopback (127.0.0.0/8) or inside network namespaces a scenario creates.',
    `Load generator and servers are separate Node processes ("agents"); proxies are separate processes; everything shares the machine's CPUs.`,
    `Bulk: ${z.repeats > 1 ? `median of ${z.repeats} runs, each ` : ''}1 or 8 TCP connections writing 256 KiB chunks for ${z.bulkMs} ms to a sink that confirms the byte count (nothing lost); Gb/s = 10^9 payload bits/s. iperf3 (-P 1 / -P 8) runs beside it where a plain TCP client fits.`,
    `Latency: 1 KiB request/response to an echo server, ${z.fixedRate} req/s over ${z.fixedConnections} connections for ${z.fixedMs} ms (Istio's 1 kB at 1000 rps shape; late requests timed from when they were due), and saturated with ${z.saturateConnections} closed-loop connections for ${z.saturateMs} ms. Percentiles are exact (sorted samples); the figure value is p50.`,
    `New connections: ${z.repeats > 1 ? `median of ${z.repeats} runs, each ` : ''}${z.connRateConcurrency} workers each opening a TCP connection, echoing 1 byte, closing, for ${z.connRateMs} ms.`,
    'CPU: utime+stime of the proxy processes from /proc/<pid>/stat over the bulk runs (per GB) and the fixed-rate run (per 1,000 requests). Memory: VmHWM (peak RSS, reset via clear_refs) over the bulk runs; RSS per idle connection = ΔVmRSS of the proxies with N idle connections open (each proved by a 1-byte echo), divided by N.',
    `N idle connections: ${z.idleTunnels}.`,
  ];
}

/**
 * Write `<profile>.top.txt` beside every `.cpuprofile` written since `sinceMs`, and return one
 * note per profile naming its three heaviest functions.
 */
async function summarizeNewProfiles(dir: string, sinceMs: number): Promise<string[]> {
  const notes: string[] = [];
  for (const file of (await readdir(dir).catch(() => [])).sort()) {
    const path = join(dir, file);
    if (!file.endsWith('.cpuprofile') || (await stat(path)).mtimeMs < sinceMs) continue;
    try {
      await writeFile(`${path}.top.txt`, await summarizeProfile(path, 25));
      const top = hotFunctions(JSON.parse(await readFile(path, 'utf8')), 3)
        .map((h) => `${h.name} ${(h.share * 100).toFixed(0)}%`)
        .join(', ');
      notes.push(`CPU profile ${file} (hot: ${top}; top 25 in ${file}.top.txt)`);
    } catch (err) {
      notes.push(`CPU profile ${file} could not be read: ${(err as Error).message}`);
    }
  }
  return notes;
}

function timeoutError(signal: AbortSignal): Error {
  const reason = signal.reason as Error | undefined;
  return Object.assign(new Error(reason?.message ?? 'aborted'), { timeout: true });
}

/** Rejects `graceMs` after `signal` aborts: a scenario that ignores its signal is abandoned. */
function abandonAfterAbort(signal: AbortSignal, graceMs: number): Promise<never> {
  return new Promise<never>((_, reject) => {
    signal.addEventListener(
      'abort',
      () => setTimeout(() => reject(timeoutError(signal)), graceMs),
      {
        once: true,
      },
    );
  });
}

function stamp(d: Date): string {
  return d
    .toISOString()
    .replace(/[:]/g, '-')
    .replace(/\.\d+Z$/, 'Z');
}

/** Run the selected scenarios and write the results; resolves with the run record. */
export async function runBench(options: RunOptions = {}): Promise<RunRecord> {
  const log = options.log ?? ((line: string) => process.stderr.write(`${line}\n`));
  const quick = options.quick ?? false;
  const out = options.out ?? DEFAULT_OUT;
  const profileDir = join(out, 'profiles');
  const started = new Date();
  const deadline =
    Date.now() + (options.runBudgetMs ?? (quick ? RUN_BUDGET_MS.quick : RUN_BUDGET_MS.full));
  const filter = options.filter ? new RegExp(options.filter, 'i') : undefined;
  const loaded = await loadScenarios(options.scenarioDir);
  const records: ScenarioRecord[] = [];

  // End-to-end scenarios first: they carry the headline figures, and if a loaded machine
  // exhausts the whole-run budget, the short micro scenarios are the ones left out.
  const selected = loaded
    .filter((l) => !filter || filter.test(l.scenario?.name ?? l.file))
    .sort((a, b) => {
      const ka = a.scenario?.kind === 'e2e' ? 0 : 1;
      const kb = b.scenario?.kind === 'e2e' ? 0 : 1;
      return ka - kb || (a.scenario?.name ?? a.file).localeCompare(b.scenario?.name ?? b.file);
    });

  for (const item of selected) {
    const t0 = Date.now();
    if (!item.scenario) {
      records.push({
        name: item.file,
        description: '',
        kind: 'micro',
        status: 'failed',
        reason: item.error,
        durationMs: 0,
        measurements: [],
        notes: [],
      });
      log(`✗ ${item.file}: ${item.error}`);
      continue;
    }
    const s = item.scenario;
    const base = { name: s.name, description: s.description ?? '', kind: s.kind };
    const skip = (reason: string) => {
      records.push({
        ...base,
        status: 'skipped',
        reason,
        durationMs: Date.now() - t0,
        measurements: [],
        notes: [],
      });
      log(`- ${s.name}: skipped (${reason})`);
    };
    if (options.signal?.aborted) {
      skip('run interrupted');
      continue;
    }
    const remaining = deadline - Date.now();
    if (remaining < Math.min(10_000, options.maxScenarioMs ?? 10_000)) {
      skip('whole-run time budget exhausted');
      continue;
    }
    const unmet = await unmetRequirement(s);
    if (unmet) {
      skip(unmet);
      continue;
    }
    const graceMs = options.graceMs ?? GRACE_MS;
    const budget = Math.min(
      scenarioBudgetMs(s, quick),
      remaining - graceMs,
      options.maxScenarioMs ?? Number.POSITIVE_INFINITY,
    );
    const controller = new AbortController();
    const timer = setTimeout(
      () => controller.abort(new Error(`time budget of ${Math.round(budget / 1000)} s exhausted`)),
      budget,
    );
    const onOuterAbort = () => controller.abort(options.signal!.reason);
    options.signal?.addEventListener('abort', onOuterAbort, { once: true });
    const tmpDir = await mkdtemp(join(tmpdir(), `mesh-bench-${s.name.replace(/\W+/g, '-')}-`));
    const ctx: ScenarioContext = {
      quick,
      profile: options.profile ?? false,
      profileDir,
      tmpDir,
      signal: controller.signal,
      log: (message) => log(`  ${s.name}: ${message}`),
    };
    if (ctx.profile) await mkdir(profileDir, { recursive: true });
    log(`▶ ${s.name} (budget ${Math.round(budget / 1000)} s)`);
    let record: ScenarioRecord;
    try {
      const result = await Promise.race([
        s.run(ctx),
        abandonAfterAbort(controller.signal, graceMs),
      ]);
      const problems = validateMeasurements(result?.measurements);
      if (controller.signal.aborted) throw timeoutError(controller.signal);
      if (!problems.length && Array.isArray(result.measurements) && !result.measurements.length) {
        problems.push(
          `returned no measurements${result.notes?.length ? ` (${result.notes[0]})` : ''}`,
        );
      }
      if (problems.length) {
        record = {
          ...base,
          status: 'failed',
          reason: `malformed measurements: ${problems.join('; ')}`,
          durationMs: Date.now() - t0,
          measurements: [],
          notes: result?.notes ?? [],
        };
      } else {
        record = {
          ...base,
          status: 'ok',
          durationMs: Date.now() - t0,
          measurements: withRatios(result.measurements),
          notes: result.notes ?? [],
        };
      }
    } catch (err) {
      const e = err as Error & { timeout?: boolean };
      const timedOut = e.timeout || controller.signal.aborted;
      record = {
        ...base,
        status: timedOut ? 'timeout' : 'failed',
        reason: timedOut
          ? String((controller.signal.reason as Error)?.message ?? e.message)
          : (e.message ?? String(err)).slice(0, 2000),
        durationMs: Date.now() - t0,
        measurements: [],
        notes: [],
      };
    } finally {
      clearTimeout(timer);
      options.signal?.removeEventListener('abort', onOuterAbort);
    }
    const leftovers = await killAllChildren();
    if (leftovers.length)
      record.notes.push(`runner stopped leftover processes: ${leftovers.join(', ')}`);
    if (ctx.profile) record.notes.push(...(await summarizeNewProfiles(profileDir, t0)));
    await rm(tmpDir, { recursive: true, force: true });
    records.push(record);
    log(
      `${record.status === 'ok' ? '✓' : '✗'} ${s.name}: ${record.status}${record.reason ? ` (${record.reason.split('\n')[0]})` : ''} in ${((Date.now() - t0) / 1000).toFixed(1)} s`,
    );
  }

  const run: RunRecord = {
    schema: 1,
    startedAt: started.toISOString(),
    durationMs: Date.now() - started.getTime(),
    options: {
      quick,
      profile: options.profile ?? false,
      ...(options.filter ? { filter: options.filter } : {}),
    },
    machine: machineInfo(fileURLToPath(new URL('.', import.meta.url))),
    method: methodLines(quick),
    scenarios: records,
  };
  const charts = await writeResults(run, out);
  // A complete full run into the repository's results also refreshes the README's section.
  if (!quick && !options.filter && !options.scenarioDir && resolve(out) === resolve(DEFAULT_OUT)) {
    const readmePath = fileURLToPath(new URL('../README.md', import.meta.url));
    const readme = await readFile(readmePath, 'utf8');
    await writeFile(readmePath, replaceReadmeSection(readme, renderReadmeSection(run, charts)));
  }
  return run;
}

/**
 * Write `latest.json`, `runs/<time>.json`, `latest.md` and the charts into `out`; resolves with
 * the chart file names.
 */
export async function writeResults(run: RunRecord, out: string): Promise<string[]> {
  await mkdir(join(out, 'runs'), { recursive: true });
  const json = `${JSON.stringify(run, null, 2)}\n`;
  await writeFile(join(out, 'latest.json'), json);
  await writeFile(join(out, 'runs', `${stamp(new Date(run.startedAt))}.json`), json);
  const charts = buildCharts(run);
  for (const c of charts) await writeFile(join(out, c.file), c.svg);
  const files = charts.map((c) => c.file);
  await writeFile(join(out, 'latest.md'), renderMarkdown(run, files));
  return files;
}
