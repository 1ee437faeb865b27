/**
 * Issue 9's targets for a tunnel against the stunnel4 pair, checked on a scenario's figures
 * and stated as notes ("met" or "missed, by how much"), so a reader does not do the arithmetic.
 */

import { formatNumber } from '../results.js';
import type { Measurement } from '../scenario.js';

function find(ms: Measurement[], figure: string, path: string): Measurement | undefined {
  return ms.find((m) => m.name === `${figure} · ${path}`);
}

/**
 * Notes for: throughput ≥ 1.0× the baseline on 1 and 8 connections; added p50 and p99 latency
 * ≤ the baseline's; new connections/s ≥ 2× the baseline; RSS per idle connection ≤ 30 KiB.
 * Figures that are missing are reported as not measured.
 */
export function targetNotes(ms: Measurement[], path: string, baseline = 'stunnel4'): string[] {
  const notes: string[] = [];
  const ratioTarget = (figure: string, min: number): void => {
    const a = find(ms, figure, path);
    const b = find(ms, figure, baseline);
    if (!a || !b || b.value <= 0) {
      notes.push(`Target ${figure} ≥ ${min}× ${baseline}: not measured.`);
      return;
    }
    const r = a.value / b.value;
    notes.push(
      `Target ${figure} ≥ ${min}× ${baseline}: ${r >= min ? 'met' : 'MISSED'} (${formatNumber(r)}×: ${formatNumber(a.value)} vs ${formatNumber(b.value)} ${a.unit}).`,
    );
  };
  ratioTarget('throughput 1 conn', 1);
  ratioTarget('throughput 8 conns', 1);
  const added = ms.find((m) => m.name.startsWith('added latency') && m.name.endsWith(`· ${path}`));
  const addedBase = added && find(ms, added.name.slice(0, added.name.lastIndexOf(' · ')), baseline);
  for (const q of ['p50', 'p99']) {
    const a = added?.extra?.[q];
    const b = addedBase?.extra?.[q];
    if (a === undefined || b === undefined)
      notes.push(`Target added ${q} latency ≤ ${baseline}'s: not measured.`);
    else {
      notes.push(
        `Target added ${q} latency ≤ ${baseline}'s: ${a <= b ? 'met' : 'MISSED'} (${formatNumber(a)} ms vs ${formatNumber(b)} ms${a > b ? `, ${formatNumber(a - b)} ms over` : ''}).`,
      );
    }
  }
  ratioTarget('new connections/s', 2);
  const idle = find(ms, 'RSS per idle connection', path);
  if (!idle) notes.push('Target RSS per idle tunnel ≤ 30 KiB: not measured.');
  else {
    notes.push(
      `Target RSS per idle tunnel ≤ 30 KiB: ${idle.value <= 30 ? 'met' : 'MISSED'} (${formatNumber(idle.value)} KiB${idle.value > 30 ? `, ${formatNumber(idle.value / 30)}× the target` : ''}).`,
    );
  }
  return notes;
}
