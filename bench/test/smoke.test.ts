/**
 * CI smoke: the real runner, as `pnpm bench --quick` runs it, over every scenario once. No
 * timing assertions: each scenario must produce well-formed figures or say why it skipped, and
 * the results must be written where `--out` says.
 */

import { execFile } from 'node:child_process';
import { existsSync, statSync } from 'node:fs';
import { mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { tsxLoader } from '../src/lib/children.js';
import { type RunRecord, validateMeasurements } from '../src/results.js';
import { loadScenarios } from '../src/runner.js';

const run = promisify(execFile);
const BENCH_DIR = fileURLToPath(new URL('..', import.meta.url));

describe('pnpm bench --quick', () => {
  let out: string;
  let record: RunRecord;
  let exitCode = 0;
  let stderr = '';

  const repoResultsMtime = () => {
    const p = join(BENCH_DIR, 'results', 'latest.json');
    return existsSync(p) ? statSync(p).mtimeMs : undefined;
  };
  let repoMtimeBefore: number | undefined;

  beforeAll(async () => {
    repoMtimeBefore = repoResultsMtime();
    out = await mkdtemp(join(tmpdir(), 'mesh-bench-smoke-'));
    try {
      const r = await run(
        process.execPath,
        [
          '--conditions=@mesh/source',
          '--import',
          tsxLoader(),
          'src/main.ts',
          '--quick',
          '--out',
          out,
        ],
        { cwd: BENCH_DIR, timeout: 170_000, maxBuffer: 16 * 1024 * 1024 },
      );
      stderr = r.stderr;
    } catch (err) {
      const e = err as { code?: number; stderr?: string };
      exitCode = typeof e.code === 'number' ? e.code : -1;
      stderr = e.stderr ?? String(err);
    }
    record = JSON.parse(await readFile(join(out, 'latest.json'), 'utf8')) as RunRecord;
  }, 180_000);

  afterAll(async () => {
    await rm(out, { recursive: true, force: true });
  });

  it('runs every scenario in src/scenarios once', async () => {
    const names = (await loadScenarios()).map((l) => l.scenario?.name ?? l.file);
    expect(record.scenarios.map((s) => s.name).sort()).toEqual(names.sort());
    expect(record.options.quick).toBe(true);
  });

  it('gets well-formed figures or a stated skip reason from each scenario', () => {
    for (const s of record.scenarios) {
      const summary = `${s.name}: ${s.status} ${s.reason ?? ''}`;
      expect(['ok', 'skipped'], summary).toContain(s.status);
      if (s.status === 'skipped') expect(s.reason, summary).toBeTruthy();
      else {
        expect(s.measurements.length, summary).toBeGreaterThan(0);
        expect(validateMeasurements(s.measurements), summary).toEqual([]);
      }
    }
    expect(exitCode, stderr).toBe(0);
  });

  it('writes JSON, Markdown and charts into --out', async () => {
    const files = await readdir(out);
    expect(files).toEqual(expect.arrayContaining(['latest.json', 'latest.md', 'runs']));
    expect(await readdir(join(out, 'runs'))).toHaveLength(1);
    const md = await readFile(join(out, 'latest.md'), 'utf8');
    for (const s of record.scenarios) expect(md).toContain(`| ${s.name} |`);
    if (record.scenarios.some((s) => s.measurements.some((m) => m.unit === 'Gb/s'))) {
      expect(files).toContain('throughput.svg');
      expect(await readFile(join(out, 'throughput.svg'), 'utf8')).toMatch(
        /^<svg [^>]*xmlns="http:\/\/www.w3.org\/2000\/svg"/,
      );
    }
    // The repository's own results are untouched by a run with --out.
    expect(repoResultsMtime()).toBe(repoMtimeBefore);
  });
});
