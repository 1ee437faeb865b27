import { describe, expect, it } from 'vitest';
import { parseIperf3Json } from '../src/lib/iperf3.js';
import { parseStatCpuTicks, parseStatusKb, sampleProcess } from '../src/lib/proc.js';
import { hotFunctions } from '../src/lib/profile-summary.js';
import { percentile, summarize } from '../src/lib/stats.js';
import { stunnelConfig } from '../src/lib/stunnel.js';
import { targetNotes } from '../src/lib/targets.js';
import { localConfig, ztunnelEnv } from '../src/lib/ztunnel.js';
import {
  README_END,
  README_START,
  type RunRecord,
  renderMarkdown,
  renderReadmeSection,
  replaceReadmeSection,
  validateMeasurements,
  withRatios,
} from '../src/results.js';
import { barChart, distributionChart, escapeXml, logTicks, ninesPosition } from '../src/svg.js';

describe('stats', () => {
  it('takes nearest-rank percentiles', () => {
    const sorted = Array.from({ length: 100 }, (_, i) => i + 1);
    expect(percentile(sorted, 50)).toBe(50);
    expect(percentile(sorted, 99)).toBe(99);
    expect(percentile(sorted, 99.9)).toBe(100);
    expect(percentile(sorted, 0)).toBe(1);
    expect(percentile([], 50)).toBeNaN();
  });

  it('summarises unsorted samples without changing them', () => {
    const samples = [5, 1, 4, 2, 3];
    const s = summarize(samples);
    expect(samples).toEqual([5, 1, 4, 2, 3]);
    expect(s).toMatchObject({ count: 5, min: 1, max: 5, p50: 3, mean: 3 });
    expect(s.percentiles.p100).toBe(5);
  });
});

describe('/proc parsing', () => {
  it('finds utime and stime after a command name containing spaces and parentheses', () => {
    const stat =
      '1234 (my (odd) proc) S 1 1234 1234 0 -1 4194304 100 0 0 0 250 75 0 0 20 0 1 0 100 1000 200';
    expect(parseStatCpuTicks(stat)).toBe(325);
  });

  it('reads kB fields from /proc/<pid>/status as bytes', () => {
    expect(parseStatusKb('Name:\tnode\nVmHWM:\t  2048 kB\nVmRSS:\t 1024 kB\n', 'VmHWM')).toBe(
      2048 * 1024,
    );
    expect(parseStatusKb('Name:\tnode\n', 'VmHWM')).toBeNaN();
  });

  it('samples this process', () => {
    const s = sampleProcess(process.pid);
    expect(s.cpuSeconds).toBeGreaterThan(0);
    expect(s.peakRssBytes).toBeGreaterThanOrEqual(s.rssBytes);
    expect(s.threads).toBeGreaterThan(0);
  });
});

describe('iperf3 JSON', () => {
  it('reads receiver-side throughput', () => {
    const r = parseIperf3Json(
      JSON.stringify({
        end: {
          sum_sent: { retransmits: 3 },
          sum_received: { bits_per_second: 2.5e10, bytes: 1e9, seconds: 1 },
          cpu_utilization_percent: { host_total: 50, remote_total: 40 },
        },
      }),
    );
    expect(r).toEqual({
      gbps: 25,
      bytes: 1e9,
      seconds: 1,
      retransmits: 3,
      cpu: { host: 50, remote: 40 },
    });
  });

  it("turns iperf3's error field into an error", () => {
    expect(() => parseIperf3Json('{"error":"unable to connect to server"}')).toThrow(
      /unable to connect/,
    );
  });
});

describe('results', () => {
  it('accepts well-formed measurements', () => {
    expect(
      validateMeasurements([
        { name: 'a', unit: 'ms', value: 1, better: 'lower', extra: { p99: 2 } },
        { name: 'b', unit: 'ms', value: 2, better: 'lower', compareTo: ['a'] },
      ]),
    ).toEqual([]);
  });

  it('names each problem of malformed measurements', () => {
    const problems = validateMeasurements([
      { name: 'a', unit: '', value: Number.POSITIVE_INFINITY, better: 'up' },
      { name: 'a', unit: 'ms', value: 1, better: 'lower', extra: { p50: 'fast' } },
    ]);
    expect(problems.join('\n')).toMatch(/unit missing/);
    expect(problems.join('\n')).toMatch(/not a finite number/);
    expect(problems.join('\n')).toMatch(/better must be/);
    expect(problems.join('\n')).toMatch(/duplicate name/);
    expect(problems.join('\n')).toMatch(/extra.p50 is not a number/);
    expect(validateMeasurements({})).toEqual(['measurements is not an array']);
  });

  it('computes ratios whichever way is better, and skips ones that cannot be read', () => {
    const r = withRatios([
      { name: 'lat · direct', unit: 'ms', value: 0.1, better: 'lower' },
      {
        name: 'lat · tunnel',
        unit: 'ms',
        value: 0.4,
        better: 'lower',
        compareTo: ['lat · direct'],
      },
      {
        name: 'added · tunnel',
        unit: 'ms',
        value: -0.01,
        better: 'lower',
        compareTo: ['lat · direct'],
      },
    ]);
    expect(r[1]!.ratios![0]!.ratio).toBeCloseTo(4);
    expect(r[1]!.ratios![0]!.factor).toBeCloseTo(0.25);
    expect(r[2]!.ratios).toEqual([]);
  });

  it('renders Markdown with percentile columns and escaped cells', () => {
    const run: RunRecord = {
      schema: 1,
      startedAt: '2026-01-01T00:00:00.000Z',
      durationMs: 1000,
      options: { quick: false, profile: false },
      machine: {
        cpuModel: 'cpu',
        cores: 2,
        memoryGiB: 4,
        kernel: 'Linux',
        arch: 'x64',
        node: 'v20',
        nodeOpenssl: '3',
        loadAverage: [0, 0, 0],
        root: false,
      },
      method: ['m'],
      scenarios: [
        {
          name: 'x/y',
          description: 'd',
          kind: 'e2e',
          status: 'ok',
          durationMs: 1,
          notes: [],
          measurements: withRatios([
            {
              name: 'lat · a|b',
              unit: 'ms',
              value: 1,
              better: 'lower',
              extra: { p50: 1, p90: 2, p99: 3 },
            },
          ]),
        },
      ],
    };
    const md = renderMarkdown(run, ['latency.svg']);
    expect(md).toContain('| lat · a\\|b | 1 | ms | 1 | 2 | 3 |');
    expect(md).toContain('![latency](latency.svg)');

    const section = renderReadmeSection(run, ['latency.svg']);
    expect(section).toContain('![latency](results/latency.svg)');
    const readme = `intro\n${README_START}\nold\n${README_END}\noutro\n`;
    const updated = replaceReadmeSection(readme, section);
    expect(updated).not.toContain('old');
    expect(updated.startsWith('intro\n')).toBe(true);
    expect(updated.endsWith(`${README_END}\noutro\n`)).toBe(true);
    expect(replaceReadmeSection('no markers', section)).toBe('no markers');
  });
});

describe('svg', () => {
  it('escapes labels', () => {
    expect(escapeXml(`a<b>&"c'`)).toBe('a&lt;b&gt;&amp;&quot;c&apos;');
    const svg = barChart({
      title: 't',
      unit: 'Gb/s',
      groups: [{ label: 'g<1>', rows: [{ label: 'x&y', values: [1] }] }],
    });
    expect(svg).toContain('g&lt;1&gt;');
    expect(svg).not.toContain('x&y');
  });

  it('draws one bar per value, longest for the largest', () => {
    const svg = barChart({
      title: 't',
      unit: 'ms',
      keys: ['p50', 'p99'],
      groups: [
        {
          label: 'g',
          rows: [
            { label: 'a', values: [1, 4] },
            { label: 'b', values: [2, 2] },
          ],
        },
      ],
    });
    const widths = [...svg.matchAll(/<rect x="170" y="[\d.]+" width="([\d.]+)" height="14"/g)].map(
      (m) => Number(m[1]),
    );
    expect(widths).toHaveLength(4);
    expect(Math.max(...widths)).toBe(400);
    expect(svg.startsWith('<svg xmlns="http://www.w3.org/2000/svg"')).toBe(true);
  });

  it('places percentiles on a nines axis and draws a line per series', () => {
    expect(ninesPosition(0)).toBe(0);
    expect(ninesPosition(90)).toBeCloseTo(1);
    expect(ninesPosition(99.9)).toBeCloseTo(3);
    expect(logTicks(0.03, 1.2)).toEqual([0.05, 0.1, 0.2, 0.5, 1]);
    const svg = distributionChart({
      title: 't',
      unit: 'ms',
      panels: [
        {
          label: 'p',
          lines: [
            {
              series: 'a',
              points: [
                { q: 50, value: 1 },
                { q: 99, value: 3 },
              ],
            },
            {
              series: 'b',
              points: [
                { q: 50, value: 2 },
                { q: 99, value: 9 },
              ],
            },
          ],
        },
      ],
    });
    expect(svg.match(/<polyline/g)).toHaveLength(2);
  });
});

describe('tool configuration', () => {
  it('configures stunnel4 like ztunnel: TLS 1.3 only, mutual auth, no resumption', () => {
    const conf = stunnelConfig('server', '127.0.0.1:1', '127.0.0.1:2', {
      certPath: 'c',
      keyPath: 'k',
      caPath: 'a',
    });
    expect(conf).toMatch(/^client = no$/m);
    expect(conf).toMatch(/^sslVersionMin = TLSv1.3$/m);
    expect(conf).toMatch(/^requireCert = yes$/m);
    expect(conf).toMatch(/^sessionResume = no$/m);
    expect(conf).toMatch(/^foreground = yes$/m);
  });

  it("gives each ztunnel Istio's dedicated-mode variables and its own listener addresses", () => {
    const w = { name: 'c-0', namespace: 'bench', serviceAccount: 'c', ip: '127.1.2.3', node: 'n' };
    const env = ztunnelEnv({ workload: w, configPath: '/x.yaml', caDir: '/ca', socks5: true });
    expect(env).toMatchObject({
      PROXY_MODE: 'dedicated',
      PROXY_WORKLOAD_INFO: 'bench/c-0/c',
      LOCAL_XDS_PATH: '/x.yaml',
      XDS_ADDRESS: '',
      UNSTABLE_ENABLE_SOCKS5: 'true',
      ZTUNNEL_INBOUND_ADDRESS: '127.1.2.3:15008',
      ZTUNNEL_SOCKS5_ADDRESS: '127.1.2.3:15080',
    });
    const config = JSON.parse(localConfig([w])) as { workloads: Array<Record<string, unknown>> };
    expect(config.workloads[0]).toMatchObject({
      workloadIps: ['127.1.2.3'],
      protocol: 'HBONE',
      trustDomain: 'cluster.local',
    });
  });
});

describe('issue 9 targets', () => {
  it('states each target as met or missed, with the margin', () => {
    const m = (name: string, value: number, extra?: Record<string, number>) => ({
      name,
      unit: 'x',
      value,
      better: 'higher' as const,
      ...(extra ? { extra } : {}),
    });
    const notes = targetNotes(
      [
        m('throughput 1 conn · stunnel4', 2),
        m('throughput 1 conn · zt', 3),
        m('throughput 8 conns · stunnel4', 2),
        m('throughput 8 conns · zt', 1),
        m('added latency @1000 rps · stunnel4', 0.2, { p50: 0.2, p99: 0.5 }),
        m('added latency @1000 rps · zt', 0.1, { p50: 0.1, p99: 0.9 }),
        m('new connections/s · stunnel4', 100),
        m('new connections/s · zt', 250),
        m('RSS per idle connection · zt', 45),
      ],
      'zt',
    );
    expect(notes).toEqual([
      'Target throughput 1 conn ≥ 1× stunnel4: met (1.50×: 3 vs 2 x).',
      'Target throughput 8 conns ≥ 1× stunnel4: MISSED (0.500×: 1 vs 2 x).',
      "Target added p50 latency ≤ stunnel4's: met (0.100 ms vs 0.200 ms).",
      "Target added p99 latency ≤ stunnel4's: MISSED (0.900 ms vs 0.500 ms, 0.400 ms over).",
      'Target new connections/s ≥ 2× stunnel4: met (2.50×: 250 vs 100 x).',
      'Target RSS per idle tunnel ≤ 30 KiB: MISSED (45 KiB, 1.50× the target).',
    ]);
    expect(targetNotes([], 'zt')[0]).toMatch(/not measured/);
  });
});

describe('CPU profile summary', () => {
  it('ranks functions by self time, merging nodes of the same function and leaving out idle', () => {
    const frame = (functionName: string, url = '', lineNumber = 0) => ({
      functionName,
      url,
      lineNumber,
    });
    const hot = hotFunctions({
      startTime: 0,
      endTime: 10_000_000, // 10 s in µs, 100 hits → 100 ms per hit
      nodes: [
        { id: 1, callFrame: frame('(idle)'), hitCount: 50 },
        {
          id: 2,
          callFrame: frame('encrypt', 'file:///x/packages/hbone/src/a.ts', 9),
          hitCount: 20,
        },
        {
          id: 3,
          callFrame: frame('encrypt', 'file:///x/packages/hbone/src/a.ts', 9),
          hitCount: 10,
        },
        { id: 4, callFrame: frame('(garbage collector)'), hitCount: 20 },
      ],
    });
    expect(hot).toEqual([
      { name: 'encrypt (packages/hbone/src/a.ts:10)', selfMs: 3000, share: 0.6 },
      { name: '(garbage collector)', selfMs: 2000, share: 0.4 },
    ]);
  });
});
