/**
 * Read a V8 `.cpuprofile` (what `node --cpu-prof` writes) and list where the time went: self
 * time per function, heaviest first, so a `--profile` run ends with evidence in text form.
 */

import { readFile } from 'node:fs/promises';
import { basename } from 'node:path';

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
  hitCount?: number;
}

interface CpuProfile {
  nodes: ProfileNode[];
  startTime: number;
  endTime: number;
  samples?: number[];
}

export interface HotFunction {
  /** `name (file:line)`, or `(garbage collector)`, `(program)`, `(idle)`. */
  name: string;
  /** Self time in milliseconds. */
  selfMs: number;
  /** Share of the busy (non-idle) sampled time, 0..1. */
  share: number;
}

function label(frame: ProfileNode['callFrame']): string {
  const name = frame.functionName || '(anonymous)';
  if (!frame.url) return name;
  const file = frame.url
    .replace(/^file:\/\//, '')
    .replace(/^.*\/(node_modules|packages|bench)\//, '$1/');
  return `${name} (${file}:${frame.lineNumber + 1})`;
}

/** Self time per function of a parsed profile, heaviest first; `(idle)` is left out. */
export function hotFunctions(profile: CpuProfile, limit = 15): HotFunction[] {
  const all = profile.nodes.reduce((a, n) => a + (n.hitCount ?? 0), 0);
  const perHit = all ? (profile.endTime - profile.startTime) / 1000 / all : 0;
  const busy = profile.nodes.filter((n) => n.callFrame.functionName !== '(idle)');
  const total = busy.reduce((a, n) => a + (n.hitCount ?? 0), 0);
  const byName = new Map<string, number>();
  for (const n of busy) {
    if (!n.hitCount) continue;
    const key = label(n.callFrame);
    byName.set(key, (byName.get(key) ?? 0) + n.hitCount);
  }
  return [...byName]
    .map(([name, hits]) => ({ name, selfMs: hits * perHit, share: total ? hits / total : 0 }))
    .sort((a, b) => b.selfMs - a.selfMs)
    .slice(0, limit);
}

/** Read a `.cpuprofile` file and render its hot functions as a text table. */
export async function summarizeProfile(path: string, limit = 15): Promise<string> {
  const profile = JSON.parse(await readFile(path, 'utf8')) as CpuProfile;
  const rows = hotFunctions(profile, limit).map(
    (h) =>
      `${(h.share * 100).toFixed(1).padStart(5)}%  ${h.selfMs.toFixed(0).padStart(7)} ms  ${h.name}`,
  );
  return [`self time of busy samples, heaviest first (${basename(path)})`, ...rows, ''].join('\n');
}
