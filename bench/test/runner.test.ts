import { mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { liveChildren } from '../src/lib/children.js';
import type { RunRecord } from '../src/results.js';
import { loadScenarios, runBench } from '../src/runner.js';

const FIXTURES = fileURLToPath(new URL('./fixtures/scenarios/', import.meta.url));

describe('runner over fixture scenarios', () => {
  let out: string;
  let run: RunRecord;
  const lines: string[] = [];

  beforeAll(async () => {
    out = await mkdtemp(join(tmpdir(), 'mesh-bench-runner-'));
    run = await runBench({
      scenarioDir: FIXTURES,
      out,
      quick: true,
      maxScenarioMs: 1000,
      graceMs: 500,
      log: (l) => lines.push(l),
    });
  }, 60_000);

  afterAll(async () => {
    await rm(out, { recursive: true, force: true });
  });

  const byName = (name: string) => run.scenarios.find((s) => s.name === name)!;

  it('records well-formed figures with their ratios to the named baselines', () => {
    const ok = byName('fixture/ok');
    expect(ok.status).toBe('ok');
    const candidate = ok.measurements.find((m) => m.name === 'ops · candidate')!;
    expect(candidate.ratios).toEqual([{ to: 'ops · baseline', ratio: 0.5, factor: 0.5 }]);
    expect(ok.notes).toEqual(['fixture']);
  });

  it('skips a scenario whose command is missing, saying which', () => {
    const s = byName('fixture/missing-command');
    expect(s.status).toBe('skipped');
    expect(s.reason).toContain('mesh-bench-no-such-tool');
  });

  it('skips a scenario whose own check gives a reason', () => {
    const s = byName('fixture/check-skip');
    expect(s).toMatchObject({ status: 'skipped', reason: 'the thing under test is not built yet' });
  });

  it('records a thrown error as a failure and goes on', () => {
    expect(byName('fixture/throws')).toMatchObject({
      status: 'failed',
      reason: 'boom from fixture',
    });
  });

  it('rejects malformed measurements with every problem named', () => {
    const s = byName('fixture/malformed');
    expect(s.status).toBe('failed');
    expect(s.reason).toContain('not a finite number');
    expect(s.reason).toContain('unknown measurement "nope"');
  });

  it('abandons a scenario that outlives its budget and kills what it left running', () => {
    const s = byName('fixture/hangs');
    expect(s.status).toBe('timeout');
    expect(s.reason).toMatch(/time budget/);
    expect(s.notes.join(' ')).toContain('fixture sleeper');
    expect(liveChildren()).toEqual([]);
  });

  it('reports a module without a Scenario default export as a failure', () => {
    const s = run.scenarios.find((x) => x.name === 'not-a-scenario.ts')!;
    expect(s.status).toBe('failed');
    expect(s.reason).toMatch(/name/);
  });

  it('writes JSON, a timestamped copy and Markdown with the ratio in words', async () => {
    const json = JSON.parse(await readFile(join(out, 'latest.json'), 'utf8')) as RunRecord;
    expect(json.scenarios.map((s) => s.name).sort()).toEqual(
      run.scenarios.map((s) => s.name).sort(),
    );
    expect(json.machine.cores).toBeGreaterThan(0);
    expect(await readdir(join(out, 'runs'))).toHaveLength(1);
    const md = await readFile(join(out, 'latest.md'), 'utf8');
    expect(md).toContain('| ops · candidate | 50 | ops/s |');
    expect(md).toContain('0.500× baseline (2× worse)');
    expect(md).toContain('skipped: the thing under test is not built yet');
  });

  it('filters scenarios by a case-insensitive regex on their names', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'mesh-bench-filter-'));
    try {
      const r = await runBench({
        scenarioDir: FIXTURES,
        out: dir,
        quick: true,
        filter: 'OK$|skip',
        log: () => {},
      });
      expect(r.scenarios.map((s) => s.name).sort()).toEqual(['fixture/check-skip', 'fixture/ok']);
      expect(r.options.filter).toBe('OK$|skip');
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('loads the real scenarios of this package', async () => {
    const loaded = await loadScenarios();
    expect(loaded.filter((l) => l.error)).toEqual([]);
    expect(loaded.map((l) => l.scenario!.name)).toContain('baseline/tcp');
  });
});
