/**
 * A small SVG chart writer (no browser, no dependencies): horizontal bar charts, one row per
 * path with optional overlaid percentiles, and percentile-distribution line charts on a
 * "nines" axis, as latency tools plot them.
 */

import { formatNumber } from './results.js';

const FONT = 'font-family="system-ui,-apple-system,Segoe UI,Helvetica,Arial,sans-serif"';
const KNOWN: Record<string, string> = { 'direct TCP': '#6b7280', stunnel4: '#2563eb' };
const PALETTE = ['#ea580c', '#16a34a', '#9333ea', '#db2777', '#0891b2', '#ca8a04', '#4d7c0f'];

/** Escape text for SVG content and attributes. */
export function escapeXml(text: string): string {
  return text.replace(
    /[<>&'"]/g,
    (c) => ({ '<': '&lt;', '>': '&gt;', '&': '&amp;', "'": '&apos;', '"': '&quot;' })[c]!,
  );
}

/** A stable colour per series name: fixed for the baselines, then a palette in order. */
export function seriesColors(series: string[]): Map<string, string> {
  const map = new Map<string, string>();
  let next = 0;
  for (const s of series) {
    if (map.has(s)) continue;
    map.set(s, KNOWN[s] ?? PALETTE[next++ % PALETTE.length]!);
  }
  return map;
}

export interface BarRow {
  /** Row label, usually the path (`stunnel4`). */
  label: string;
  /** One value, or one per key (e.g. p50, p90, p99), drawn overlaid from largest to smallest. */
  values: number[];
}

export interface BarGroup {
  /** Group heading, usually `<scenario> — <figure>`. */
  label: string;
  rows: BarRow[];
}

export interface BarChartOptions {
  title: string;
  unit: string;
  groups: BarGroup[];
  /** Names of the values of each row when there are several (legend). */
  keys?: string[];
}

const W = 800;
const LABEL_W = 170;
const BAR_W = 400;
const ROW_H = 20;
const GROUP_H = 24;

/** Horizontal bars, each group scaled to its own maximum (values printed at the bar end). */
export function barChart(options: BarChartOptions): string {
  const colors = seriesColors(options.groups.flatMap((g) => g.rows.map((r) => r.label)));
  const keys = options.keys ?? [];
  const parts: string[] = [];
  let y = 44;
  if (keys.length > 1) {
    keys.forEach((k, i) => {
      const x = LABEL_W + i * 90;
      parts.push(
        `<rect x="${x}" y="${y - 10}" width="14" height="10" fill="#374151" fill-opacity="${opacity(i, keys.length)}"/>`,
        `<text x="${x + 18}" y="${y - 1}" font-size="11" fill="#374151">${escapeXml(k)}</text>`,
      );
    });
    y += 12;
  }
  for (const group of options.groups) {
    const max = Math.max(...group.rows.flatMap((r) => r.values.filter(Number.isFinite)), 0) || 1;
    parts.push(
      `<text x="10" y="${y + 15}" font-size="12" font-weight="600" fill="#111827">${escapeXml(group.label)}</text>`,
    );
    y += GROUP_H;
    for (const row of group.rows) {
      const color = colors.get(row.label)!;
      parts.push(
        `<text x="${LABEL_W - 8}" y="${y + 14}" font-size="11" text-anchor="end" fill="#374151">${escapeXml(row.label)}</text>`,
      );
      const order = row.values.map((v, i) => ({ v, i })).sort((a, b) => b.v - a.v);
      for (const { v, i } of order) {
        if (!Number.isFinite(v) || v <= 0) continue;
        const w = Math.max(1, (v / max) * BAR_W);
        parts.push(
          `<rect x="${LABEL_W}" y="${y + 3}" width="${w.toFixed(1)}" height="${ROW_H - 6}" fill="${color}" fill-opacity="${opacity(i, row.values.length)}"><title>${escapeXml(`${row.label}${keys[i] ? ` ${keys[i]}` : ''}: ${formatNumber(v)} ${options.unit}`)}</title></rect>`,
        );
      }
      const text = row.values
        .map((v, i) => `${keys.length > 1 && keys[i] ? `${keys[i]} ` : ''}${formatNumber(v)}`)
        .join(' / ');
      parts.push(
        `<text x="${LABEL_W + BAR_W + 8}" y="${y + 14}" font-size="11" fill="#111827">${escapeXml(`${text} ${options.unit}`)}</text>`,
      );
      y += ROW_H;
    }
    y += 6;
  }
  return frame(options.title, y + 10, parts);
}

function opacity(i: number, n: number): string {
  // The first key (e.g. p50) is the darkest and drawn on top.
  return n <= 1 ? '0.9' : (0.95 - (0.6 * i) / (n - 1)).toFixed(2);
}

function frame(title: string, height: number, parts: string[]): string {
  return [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${Math.ceil(height)}" viewBox="0 0 ${W} ${Math.ceil(height)}" ${FONT}>`,
    `<rect width="100%" height="100%" fill="#ffffff"/>`,
    `<text x="10" y="24" font-size="16" font-weight="700" fill="#111827">${escapeXml(title)}</text>`,
    ...parts,
    '</svg>',
    '',
  ].join('\n');
}

export interface DistributionLine {
  series: string;
  /** Percentile (0..100, 100 excluded) → value. */
  points: Array<{ q: number; value: number }>;
}

export interface DistributionPanel {
  label: string;
  lines: DistributionLine[];
}

/** Position of percentile `q` on a "nines" axis: p0 → 0, p90 → 1, p99 → 2, p99.9 → 3. */
export function ninesPosition(q: number): number {
  return Math.log10(100 / (100 - Math.min(q, 99.99)));
}

/** Latency distributions: one panel per figure, one line per path, log-scaled value axis. */
export function distributionChart(options: {
  title: string;
  unit: string;
  panels: DistributionPanel[];
}): string {
  const colors = seriesColors(options.panels.flatMap((p) => p.lines.map((l) => l.series)));
  const parts: string[] = [];
  const panelH = 190;
  const plotX = 70;
  const plotW = 560;
  const plotH = 130;
  let y = 40;
  for (const panel of options.panels) {
    const values = panel.lines
      .flatMap((l) => l.points.map((p) => p.value))
      .filter((v) => v > 0 && Number.isFinite(v));
    if (!values.length) continue;
    const lo = Math.log10(Math.min(...values)) - 0.05;
    const hi = Math.log10(Math.max(...values)) + 0.05;
    const top = y + 26;
    const xMax = ninesPosition(99.9);
    const px = (q: number) => plotX + (ninesPosition(q) / xMax) * plotW;
    const py = (v: number) => top + plotH - ((Math.log10(v) - lo) / (hi - lo || 1)) * plotH;
    parts.push(
      `<text x="10" y="${y + 14}" font-size="12" font-weight="600" fill="#111827">${escapeXml(panel.label)}</text>`,
    );
    parts.push(
      `<rect x="${plotX}" y="${top}" width="${plotW}" height="${plotH}" fill="none" stroke="#d1d5db"/>`,
    );
    for (const q of [0, 50, 90, 99, 99.9]) {
      const x = px(q);
      parts.push(
        `<line x1="${x.toFixed(1)}" y1="${top}" x2="${x.toFixed(1)}" y2="${top + plotH}" stroke="#e5e7eb"/>`,
        `<text x="${x.toFixed(1)}" y="${top + plotH + 14}" font-size="10" text-anchor="middle" fill="#6b7280">p${q}</text>`,
      );
    }
    for (const t of logTicks(10 ** lo, 10 ** hi)) {
      const ty = py(t);
      parts.push(
        `<line x1="${plotX}" y1="${ty.toFixed(1)}" x2="${plotX + plotW}" y2="${ty.toFixed(1)}" stroke="#f3f4f6"/>`,
        `<text x="${plotX - 6}" y="${(ty + 3).toFixed(1)}" font-size="10" text-anchor="end" fill="#6b7280">${Number(t.toPrecision(2))}</text>`,
      );
    }
    parts.push(
      `<text x="${plotX - 6}" y="${top - 4}" font-size="10" text-anchor="end" fill="#6b7280">${escapeXml(options.unit)}</text>`,
    );
    panel.lines.forEach((line, i) => {
      const color = colors.get(line.series)!;
      const pts = line.points.filter((p) => p.value > 0 && p.q < 100).sort((a, b) => a.q - b.q);
      const d = pts.map((p) => `${px(p.q).toFixed(1)},${py(p.value).toFixed(1)}`).join(' ');
      parts.push(`<polyline points="${d}" fill="none" stroke="${color}" stroke-width="2"/>`);
      for (const p of pts) {
        parts.push(
          `<circle cx="${px(p.q).toFixed(1)}" cy="${py(p.value).toFixed(1)}" r="2.5" fill="${color}"><title>${escapeXml(`${line.series} p${p.q}: ${formatNumber(p.value)} ${options.unit}`)}</title></circle>`,
        );
      }
      const ly = top + 12 + i * 16;
      parts.push(
        `<rect x="${plotX + plotW + 12}" y="${ly - 9}" width="12" height="10" fill="${color}"/>`,
        `<text x="${plotX + plotW + 28}" y="${ly}" font-size="11" fill="#374151">${escapeXml(line.series)}</text>`,
      );
    });
    y += panelH;
  }
  return frame(options.title, y + 10, parts);
}

/** 1-2-5 ticks between lo and hi. */
export function logTicks(lo: number, hi: number): number[] {
  const out: number[] = [];
  for (let e = Math.floor(Math.log10(lo)); e <= Math.ceil(Math.log10(hi)); e++) {
    for (const m of [1, 2, 5]) {
      const t = m * 10 ** e;
      if (t >= lo && t <= hi) out.push(t);
    }
  }
  return out;
}
