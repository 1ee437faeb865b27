/** The result file of one bench run, its ratios and its Markdown rendering. */

import type { MachineInfo } from './machine.js';
import type { Measurement, Scenario } from './scenario.js';

export type ScenarioStatus = 'ok' | 'skipped' | 'failed' | 'timeout';

/** A measurement against one of its baselines. */
export interface Ratio {
  /** Name of the baseline measurement. */
  to: string;
  /** `value / baseline.value`. */
  ratio: number;
  /** How many times better (>1) or worse (<1) than the baseline, whichever way `better` points. */
  factor: number;
}

export interface ScenarioRecord {
  name: string;
  description: string;
  kind: Scenario['kind'];
  status: ScenarioStatus;
  /** Why it was skipped, failed or timed out. */
  reason?: string;
  durationMs: number;
  measurements: Array<Measurement & { ratios?: Ratio[] }>;
  notes: string[];
}

export interface RunRecord {
  schema: 1;
  startedAt: string;
  durationMs: number;
  options: { quick: boolean; profile: boolean; filter?: string };
  machine: MachineInfo;
  method: string[];
  scenarios: ScenarioRecord[];
}

/**
 * Check a scenario's measurements against the contract: unique names, a unit, a finite value,
 * a direction, and `compareTo` naming measurements of the same result. Returns the problems.
 */
export function validateMeasurements(measurements: unknown): string[] {
  if (!Array.isArray(measurements)) return ['measurements is not an array'];
  const problems: string[] = [];
  const names = new Set<string>();
  for (const [i, m] of measurements.entries()) {
    const where = `measurement ${i}${m && typeof m.name === 'string' ? ` (${m.name})` : ''}`;
    if (!m || typeof m !== 'object') {
      problems.push(`${where} is not an object`);
      continue;
    }
    if (typeof m.name !== 'string' || !m.name) problems.push(`${where}: name missing`);
    else if (names.has(m.name)) problems.push(`${where}: duplicate name`);
    else names.add(m.name);
    if (typeof m.unit !== 'string' || !m.unit) problems.push(`${where}: unit missing`);
    if (typeof m.value !== 'number' || !Number.isFinite(m.value))
      problems.push(`${where}: value ${m.value} is not a finite number`);
    if (m.better !== 'higher' && m.better !== 'lower')
      problems.push(`${where}: better must be 'higher' or 'lower'`);
    if (m.extra !== undefined) {
      if (typeof m.extra !== 'object' || m.extra === null)
        problems.push(`${where}: extra is not an object`);
      else
        for (const [k, v] of Object.entries(m.extra))
          if (typeof v !== 'number') problems.push(`${where}: extra.${k} is not a number`);
    }
  }
  for (const m of measurements) {
    for (const to of m?.compareTo ?? []) {
      if (!names.has(to)) problems.push(`${m.name}: compareTo names unknown measurement "${to}"`);
    }
  }
  return problems;
}

/** Ratios of each measurement to the baselines it names (skipping meaningless ones). */
export function withRatios(measurements: Measurement[]): Array<Measurement & { ratios?: Ratio[] }> {
  const byName = new Map(measurements.map((m) => [m.name, m]));
  return measurements.map((m) => {
    if (!m.compareTo?.length) return m;
    const ratios: Ratio[] = [];
    for (const to of m.compareTo) {
      const base = byName.get(to);
      // A ratio only reads sensibly between positive figures (an "added latency" can be ≤ 0).
      if (!base || base.value <= 0 || m.value <= 0) continue;
      const ratio = m.value / base.value;
      ratios.push({ to, ratio, factor: m.better === 'higher' ? ratio : 1 / ratio });
    }
    return { ...m, ratios };
  });
}

/** `a · b` → `[a, b]`: the figure and the path of a measurement name. */
export function splitName(name: string): { figure: string; series: string } {
  const at = name.lastIndexOf(' · ');
  return at < 0
    ? { figure: name, series: name }
    : { figure: name.slice(0, at), series: name.slice(at + 3) };
}

/** Three significant digits, without exponent noise for everyday magnitudes. */
export function formatNumber(v: number): string {
  if (!Number.isFinite(v)) return String(v);
  const a = Math.abs(v);
  if (a === 0) return '0';
  if (a >= 1000 || Number.isInteger(v)) return Math.round(v).toLocaleString('en-US');
  if (a >= 100) return v.toFixed(0);
  if (a >= 10) return v.toFixed(1);
  if (a >= 1) return v.toFixed(2);
  return v.toPrecision(3);
}

function ratioText(m: Measurement & { ratios?: Ratio[] }): string {
  if (!m.ratios?.length) return m.compareTo?.length ? 'n/a' : '—';
  return m.ratios
    .map((r) => {
      const { series } = splitName(r.to);
      const verdict =
        r.factor >= 1
          ? `${formatNumber(r.factor)}× better`
          : `${formatNumber(1 / r.factor)}× worse`;
      return `${formatNumber(r.ratio)}× ${series} (${verdict})`;
    })
    .join('; ');
}

function details(m: Measurement): string {
  const skip = new Set([
    'p0',
    'p10',
    'p25',
    'p50',
    'p75',
    'p90',
    'p95',
    'p99',
    'p99.9',
    'p100',
    'count',
    'mean',
  ]);
  return Object.entries(m.extra ?? {})
    .filter(([k]) => !skip.has(k))
    .map(([k, v]) => `${k} ${formatNumber(v)}`)
    .join(', ');
}

function cell(text: string): string {
  return text.replace(/\|/g, '\\|').replace(/\n/g, ' ');
}

function duration(ms: number): string {
  return ms >= 60_000
    ? `${Math.floor(ms / 60_000)} min ${Math.round((ms % 60_000) / 1000)} s`
    : `${(ms / 1000).toFixed(1)} s`;
}

/** The run as Markdown: machine, method, a summary, then one table per scenario. */
export function renderMarkdown(run: RunRecord, charts: string[] = []): string {
  const m = run.machine;
  const lines: string[] = [];
  lines.push('# Bench results', '');
  lines.push(
    `Run ${run.startedAt} · ${run.options.quick ? '`--quick` (smoke sizes, figures not meaningful)' : 'full'}` +
      `${run.options.filter ? ` · filter \`${run.options.filter}\`` : ''} · ${duration(run.durationMs)}` +
      `${m.commit ? ` · commit ${m.commit}` : ''}`,
    '',
  );
  lines.push('## Machine', '');
  lines.push('| | |', '|---|---|');
  lines.push(`| CPU | ${m.cpuModel}, ${m.cores} logical CPUs, ${m.memoryGiB} GiB |`);
  lines.push(`| Kernel | ${m.kernel} (${m.arch}) |`);
  lines.push(
    `| Node.js | ${m.node} (OpenSSL ${m.nodeOpenssl}${m.nghttp2 ? `, nghttp2 ${m.nghttp2}` : ''}) |`,
  );
  lines.push(
    `| stunnel4 | ${m.stunnel ?? 'not installed'}${m.stunnelOpenssl ? ` (${m.stunnelOpenssl})` : ''} |`,
  );
  lines.push(`| iperf3 | ${m.iperf3 ?? 'not installed'} |`);
  lines.push(`| openssl CLI | ${m.opensslCli ?? 'not installed'} |`);
  lines.push(`| Load average at start | ${m.loadAverage.join(' / ')} (shared machine) |`);
  lines.push('');
  lines.push('## Method', '');
  for (const line of run.method) lines.push(`- ${line}`);
  lines.push('');
  if (charts.length) {
    lines.push('## Charts', '');
    for (const c of charts) lines.push(`![${c.replace(/\.svg$/, '')}](${c})`, '');
  }
  lines.push('## Summary', '');
  lines.push('| Scenario | Kind | Status | Time | Figures |', '|---|---|---|---|---|');
  for (const s of run.scenarios) {
    const status = s.status === 'ok' ? 'ok' : `${s.status}: ${s.reason ?? ''}`;
    lines.push(
      `| ${s.name} | ${s.kind} | ${cell(status)} | ${duration(s.durationMs)} | ${s.measurements.length} |`,
    );
  }
  lines.push('');
  for (const s of run.scenarios) {
    if (!s.measurements.length) continue;
    lines.push(`## ${s.name}`, '', s.description, '');
    const hasPct = s.measurements.some((x) => x.extra?.p99 !== undefined);
    lines.push(
      `| Figure | Value | Unit |${hasPct ? ' p50 | p90 | p99 |' : ''} Against baselines | Details |`,
      `|---|---:|---|${hasPct ? '---:|---:|---:|' : ''}---|---|`,
    );
    for (const x of s.measurements) {
      const pct = hasPct
        ? `${['p50', 'p90', 'p99']
            .map((k) => (x.extra?.[k] !== undefined ? formatNumber(x.extra[k]!) : ''))
            .join(' | ')} |`
        : '';
      lines.push(
        `| ${cell(x.name)} | ${formatNumber(x.value)} | ${x.unit} |${hasPct ? ` ${pct}` : ''} ${cell(ratioText(x))} | ${cell(details(x))} |`,
      );
    }
    lines.push('');
    if (s.notes.length) {
      for (const n of s.notes) lines.push(`- ${n}`);
      lines.push('');
    }
  }
  return lines.join('\n');
}

export const README_START = '<!-- bench-results:start -->';
export const README_END = '<!-- bench-results:end -->';

/**
 * The condensed results for `bench/README.md`: where and when, the charts, and each scenario's
 * figures with their ratios (details stay in `results/latest.md`).
 */
export function renderReadmeSection(
  run: RunRecord,
  charts: string[],
  resultsPath = 'results',
): string {
  const m = run.machine;
  const lines = [
    README_START,
    '',
    `Run ${run.startedAt.slice(0, 16).replace('T', ' ')} UTC${m.commit ? ` at commit ${m.commit}` : ''} on ${m.cpuModel} (${m.cores} CPUs, shared), ${m.kernel}, Node ${m.node} (OpenSSL ${m.nodeOpenssl}), stunnel ${m.stunnel ?? '-'}, ${m.iperf3 ?? 'no iperf3'}; load average at start ${m.loadAverage.join(' / ')}. Full tables: [${resultsPath}/latest.md](${resultsPath}/latest.md), raw: [${resultsPath}/latest.json](${resultsPath}/latest.json).`,
    '',
  ];
  for (const c of charts) lines.push(`![${c.replace(/\.svg$/, '')}](${resultsPath}/${c})`, '');
  for (const s of run.scenarios) {
    if (s.status !== 'ok') {
      lines.push(
        `**${s.name}**: ${s.status}${s.reason ? ` (${s.reason.split('\n')[0]})` : ''}`,
        '',
      );
      continue;
    }
    lines.push(
      `**${s.name}**: ${s.description}`,
      '',
      '| Figure | Value | Against baselines |',
      '|---|---:|---|',
    );
    for (const x of s.measurements) {
      lines.push(
        `| ${cell(x.name)} | ${formatNumber(x.value)} ${x.unit} | ${cell(ratioText(x))} |`,
      );
    }
    lines.push('');
    const targets = s.notes.filter((n) => n.startsWith('Target '));
    if (targets.length) lines.push(...targets.map((n) => `- ${n}`), '');
  }
  lines.push(README_END);
  return lines.join('\n');
}

/** Replace the marked results section of a README text (unchanged when markers are missing). */
export function replaceReadmeSection(readme: string, section: string): string {
  const a = readme.indexOf(README_START);
  const b = readme.indexOf(README_END);
  if (a < 0 || b < a) return readme;
  return readme.slice(0, a) + section + readme.slice(b + README_END.length);
}
