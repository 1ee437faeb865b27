/** The charts of a run: throughput bars, latency bars, latency distributions. */

import { PERCENTILES } from './lib/stats.js';
import { type RunRecord, splitName } from './results.js';
import { type BarGroup, barChart, type DistributionPanel, distributionChart } from './svg.js';

export interface Chart {
  file: string;
  svg: string;
}

function grouped(
  run: RunRecord,
  keep: (m: RunRecord['scenarios'][number]['measurements'][number]) => boolean,
) {
  const groups = new Map<
    string,
    Array<{ series: string; m: RunRecord['scenarios'][number]['measurements'][number] }>
  >();
  for (const s of run.scenarios) {
    for (const m of s.measurements) {
      if (!keep(m)) continue;
      const { figure, series } = splitName(m.name);
      const key = `${s.name} — ${figure}`;
      if (!groups.has(key)) groups.set(key, []);
      groups.get(key)!.push({ series, m });
    }
  }
  return groups;
}

/** Build every chart the run has data for (none when nothing matched). */
export function buildCharts(run: RunRecord): Chart[] {
  const charts: Chart[] = [];
  const quick = run.options.quick ? ' (--quick: smoke sizes)' : '';

  const tput = grouped(run, (m) => m.unit === 'Gb/s');
  if (tput.size) {
    const groups: BarGroup[] = [...tput].map(([label, rows]) => ({
      label,
      rows: rows.map((r) => ({ label: r.series, values: [r.m.value] })),
    }));
    charts.push({
      file: 'throughput.svg',
      svg: barChart({ title: `Throughput, Gb/s (higher is better)${quick}`, unit: 'Gb/s', groups }),
    });
  }

  const isLatency = (m: { unit: string; extra?: Record<string, number> }) =>
    m.unit === 'ms' && m.extra?.p50 !== undefined && m.extra['p99.9'] !== undefined;
  const lat = grouped(run, isLatency);
  if (lat.size) {
    const groups: BarGroup[] = [...lat].map(([label, rows]) => ({
      label,
      rows: rows.map((r) => ({
        label: r.series,
        values: ['p50', 'p90', 'p99'].map((k) => r.m.extra![k]!),
      })),
    }));
    charts.push({
      file: 'latency.svg',
      svg: barChart({
        title: `1 KiB request/response latency, ms (lower is better)${quick}`,
        unit: 'ms',
        groups,
        keys: ['p50', 'p90', 'p99'],
      }),
    });
    const panels: DistributionPanel[] = [...lat].map(([label, rows]) => ({
      label,
      lines: rows.map((r) => ({
        series: r.series,
        points: PERCENTILES.filter((q) => q < 100 && r.m.extra![`p${q}`] !== undefined).map(
          (q) => ({ q, value: r.m.extra![`p${q}`]! }),
        ),
      })),
    }));
    charts.push({
      file: 'latency-distribution.svg',
      svg: distributionChart({
        title: `Latency distribution, ms (log scale)${quick}`,
        unit: 'ms',
        panels,
      }),
    });
  }
  return charts;
}
