/**
 * The standard end-to-end comparison: the same traffic through several paths (direct TCP, a
 * stunnel4 pair, a tunnel under test), figure by figure, so every figure of the tunnel has its
 * baselines from the same minute. The shapes follow what Istio and ztunnel publish: bulk
 * throughput on 1 and 8 connections, 1 KiB request/response latency at a fixed rate and at
 * saturation, new connections per second, CPU-seconds per GB and per 1,000 requests, peak RSS,
 * and RSS per idle tunnel.
 */

import type { Measurement, ScenarioContext } from '../scenario.js';
import type { Agent, AgentServer } from './agent.js';
import { ProcessMeter, resetPeakRss, sampleProcess } from './proc.js';
import { type LatencySummary, median } from './stats.js';
import type { DialSpec, Endpoint } from './traffic.js';

/** A process whose CPU and memory count towards a path (a proxy). */
export interface MeteredProcess {
  /** e.g. `client ztunnel`, `stunnel4 server`. */
  name: string;
  pid: number;
}

/** A path set up in front of one server. */
export interface PathHop {
  /** How the client agent reaches the server through this path. */
  dial: DialSpec;
  /** Proxies carrying this path's traffic (empty for direct TCP). */
  processes: MeteredProcess[];
  close(): Promise<void>;
}

/** One way from the client to the server. */
export interface TrafficPath {
  /** Figure label, e.g. `direct TCP`, `stunnel4`, `ztunnel ×2`. */
  name: string;
  /** Baselines are what later paths are compared with. */
  baseline?: boolean;
  /** Prepare the path in front of `server` (started once per server kind). */
  setup(server: Endpoint, kind: 'sink' | 'echo', signal: AbortSignal): Promise<PathHop>;
}

/** Sizes for one comparison run; {@link suiteSizes} gives the defaults. */
export interface SuiteSizes {
  /** Runs per path of the bulk and new-connection figures; the median is reported. */
  repeats: number;
  bulkMs: number;
  /** Fixed request rate across all latency connections (Istio: 1000 rps, 1 kB). */
  fixedRate: number;
  fixedConnections: number;
  fixedMs: number;
  saturateConnections: number;
  saturateMs: number;
  connRateConcurrency: number;
  connRateMs: number;
  /** Idle tunnels held open for the memory figure (0 to skip). */
  idleTunnels: number;
}

/** Full-run sizes, or the smallest that still exercise every path (`--quick`). */
export function suiteSizes(quick: boolean): SuiteSizes {
  return quick
    ? {
        repeats: 1,
        bulkMs: 250,
        fixedRate: 400,
        fixedConnections: 4,
        fixedMs: 250,
        saturateConnections: 4,
        saturateMs: 250,
        connRateConcurrency: 4,
        connRateMs: 250,
        idleTunnels: 20,
      }
    : {
        repeats: 3,
        bulkMs: 1500,
        fixedRate: 1000,
        fixedConnections: 4,
        fixedMs: 4000,
        saturateConnections: 16,
        saturateMs: 2000,
        connRateConcurrency: 8,
        connRateMs: 1000,
        idleTunnels: 1000,
      };
}

export interface ComparePathsOptions {
  paths: TrafficPath[];
  /** Runs the sink and echo servers. */
  serverAgent: Agent;
  /** Runs the clients. */
  clientAgent: Agent;
  /** Address the servers listen on (the server workload's IP). Default 127.0.0.1. */
  serverHost?: string;
  sizes?: Partial<SuiteSizes>;
  /** Figures to run (default all). */
  figures?: Array<'bulk' | 'latency' | 'connRate' | 'idle'>;
}

const MiB = 1024 * 1024;

function latencyExtra(s: LatencySummary, rps: number): Record<string, number> {
  return { ...s.percentiles, mean: s.mean, count: s.count, rps };
}

/** Sum of CPU seconds over processes, plus each one's share, between `start()` and `stop()`. */
function meterAll(processes: MeteredProcess[]) {
  const meters = processes.map((p) => ({ p, m: new ProcessMeter(p.pid) }));
  return {
    start: () => {
      for (const { m } of meters) m.start();
    },
    stop: () => {
      const each = meters.map(({ p, m }) => ({ name: p.name, ...m.stop() }));
      return { cpuSeconds: each.reduce((a, e) => a + e.cpuSeconds, 0), each };
    },
  };
}

/** What {@link comparePaths} measured, and what went wrong on the way. */
export interface SuiteResult {
  measurements: Measurement[];
  /** One line per figure that failed on a path (the other paths and figures still ran). */
  notes: string[];
}

/**
 * Run the standard figures over every path; measurements are named `<figure> · <path>`, and
 * each names the baselines before it that have the same figure in `compareTo`. A figure that
 * fails on one path becomes a note and the run goes on; an abort stops everything.
 */
export async function comparePaths(
  ctx: ScenarioContext,
  options: ComparePathsOptions,
): Promise<SuiteResult> {
  const sizes = { ...suiteSizes(ctx.quick), ...options.sizes };
  const figures = new Set(options.figures ?? ['bulk', 'latency', 'connRate', 'idle']);
  const { paths, clientAgent, serverAgent } = options;
  const host = options.serverHost ?? '127.0.0.1';
  const signal = ctx.signal;
  const out: Measurement[] = [];
  const notes: string[] = [];
  const push = (figure: string, i: number, m: Omit<Measurement, 'name' | 'compareTo'>) => {
    const base = paths
      .slice(0, i)
      .filter((p) => p.baseline)
      .map((p) => `${figure} · ${p.name}`)
      .filter((b) => out.some((x) => x.name === b));
    out.push({
      name: `${figure} · ${paths[i]!.name}`,
      ...m,
      ...(base.length ? { compareTo: base } : {}),
    });
  };
  /** Run one figure on one path; a failure becomes a note unless the scenario was aborted. */
  const attempt = async (what: string, i: number, fn: () => Promise<void>): Promise<boolean> => {
    ctx.log(`${what} via ${paths[i]!.name}`);
    try {
      await fn();
      return true;
    } catch (err) {
      if (signal.aborted) throw err;
      const message = (err as Error).message?.split('\n')[0] ?? String(err);
      notes.push(`${what} via ${paths[i]!.name} failed: ${message}`);
      ctx.log(`  failed: ${message}`);
      return false;
    }
  };
  /**
   * `sizes.repeats` runs per path, interleaved across paths so load drifts hit every path
   * alike; a path that fails once is not retried. Resolves with each path's successful runs.
   */
  const repeated = async <T>(what: string, run: (i: number) => Promise<T>): Promise<T[][]> => {
    const results = paths.map(() => [] as T[]);
    const failed = new Set<number>();
    for (let rep = 0; rep < sizes.repeats; rep++) {
      for (const i of paths.keys()) {
        if (failed.has(i)) continue;
        const ok = await attempt(
          sizes.repeats > 1 ? `${what} (run ${rep + 1}/${sizes.repeats})` : what,
          i,
          async () => {
            results[i]!.push(await run(i));
          },
        );
        if (!ok) failed.add(i);
      }
    }
    return results;
  };
  const spread = (values: number[]) => ({
    runs: values.length,
    min: Math.min(...values),
    max: Math.max(...values),
  });

  const servers: AgentServer[] = [];
  const hops: Array<{ sink: PathHop; echo: PathHop }> = [];
  try {
    const sink = await serverAgent.sink(host);
    servers.push(sink);
    const echo = await serverAgent.echo(host);
    servers.push(echo);
    for (const path of paths) {
      const toSink = await path.setup({ host: sink.host, port: sink.port }, 'sink', signal);
      try {
        hops.push({
          sink: toSink,
          echo: await path.setup({ host: echo.host, port: echo.port }, 'echo', signal),
        });
      } catch (err) {
        await toSink.close().catch(() => {});
        throw err;
      }
    }

    if (figures.has('bulk')) {
      for (const hop of hops) for (const p of hop.sink.processes) resetPeakRss(p.pid);
      const totals = paths.map(() => ({ bytes: 0, cpu: new Map<string, number>() }));
      for (const connections of [1, 8]) {
        const figure = `throughput ${connections} conn${connections > 1 ? 's' : ''}`;
        const runs = await repeated(figure, async (i) => {
          const hop = hops[i]!.sink;
          const meter = meterAll(hop.processes);
          meter.start();
          const r = await clientAgent.bulk(
            { dial: hop.dial, connections, durationMs: sizes.bulkMs },
            signal,
          );
          const cpu = meter.stop();
          totals[i]!.bytes += r.bytes;
          for (const e of cpu.each)
            totals[i]!.cpu.set(e.name, (totals[i]!.cpu.get(e.name) ?? 0) + e.cpuSeconds);
          return { ...r, cpuSeconds: cpu.cpuSeconds };
        });
        for (const [i, list] of runs.entries()) {
          if (!list.length) continue;
          const gbps = list.map((r) => r.gbps);
          const sum = (f: (r: (typeof list)[number]) => number) =>
            list.reduce((a, r) => a + f(r), 0);
          push(figure, i, {
            unit: 'Gb/s',
            value: median(gbps),
            better: 'higher',
            extra: {
              ...spread(gbps),
              bytes: sum((r) => r.bytes),
              seconds: sum((r) => r.seconds),
              'proxy CPU s': sum((r) => r.cpuSeconds),
            },
          });
        }
      }
      for (const [i, hop] of hops.entries()) {
        const { bytes, cpu } = totals[i]!;
        if (!hop.sink.processes.length || bytes === 0) continue;
        const gb = bytes / 1e9;
        const extra: Record<string, number> = {};
        let total = 0;
        for (const [name, seconds] of cpu) {
          extra[`${name} CPU-s/GB`] = seconds / gb;
          total += seconds;
        }
        push('CPU per GB', i, { unit: 'CPU-s/GB', value: total / gb, better: 'lower', extra });
        const rss: Record<string, number> = {};
        let peak = 0;
        for (const p of hop.sink.processes) {
          const mib = sampleProcess(p.pid).peakRssBytes / MiB;
          rss[`${p.name} MiB`] = mib;
          peak += mib;
        }
        push('peak RSS under bulk, all proxies', i, {
          unit: 'MiB',
          value: peak,
          better: 'lower',
          extra: rss,
        });
      }
    }

    if (figures.has('latency')) {
      const fixedFigure = `latency @${sizes.fixedRate} rps`;
      let direct: LatencySummary | undefined;
      for (const i of paths.keys()) {
        await attempt(fixedFigure, i, async () => {
          const hop = hops[i]!.echo;
          const meter = meterAll(hop.processes);
          meter.start();
          const r = await clientAgent.latency(
            {
              dial: hop.dial,
              connections: sizes.fixedConnections,
              rate: sizes.fixedRate,
              durationMs: sizes.fixedMs,
            },
            signal,
          );
          const cpu = meter.stop();
          push(fixedFigure, i, {
            unit: 'ms',
            value: r.latencyMs.p50,
            better: 'lower',
            extra: latencyExtra(r.latencyMs, r.rps),
          });
          if (i === 0 && !hop.processes.length) direct = r.latencyMs;
          else if (direct) {
            const added = {
              p50: r.latencyMs.p50 - direct.p50,
              p90: r.latencyMs.p90 - direct.p90,
              p99: r.latencyMs.p99 - direct.p99,
            };
            push(`added latency @${sizes.fixedRate} rps`, i, {
              unit: 'ms',
              value: added.p50,
              better: 'lower',
              extra: added,
            });
          }
          if (hop.processes.length) {
            const extra: Record<string, number> = {};
            for (const e of cpu.each) extra[`${e.name} CPU s`] = e.cpuSeconds;
            push('CPU per 1,000 requests', i, {
              unit: 'CPU-s/1k req',
              value: cpu.cpuSeconds / (r.requests / 1000),
              better: 'lower',
              extra,
            });
          }
        });
      }
      const saturated = `latency saturated (${sizes.saturateConnections} conns)`;
      for (const i of paths.keys()) {
        await attempt(saturated, i, async () => {
          const r = await clientAgent.latency(
            {
              dial: hops[i]!.echo.dial,
              connections: sizes.saturateConnections,
              durationMs: sizes.saturateMs,
            },
            signal,
          );
          push(saturated, i, {
            unit: 'ms',
            value: r.latencyMs.p50,
            better: 'lower',
            extra: latencyExtra(r.latencyMs, r.rps),
          });
          push(`requests/s saturated (${sizes.saturateConnections} conns)`, i, {
            unit: 'req/s',
            value: r.rps,
            better: 'higher',
          });
        });
      }
    }

    if (figures.has('connRate')) {
      const runs = await repeated('new connections/s', (i) =>
        clientAgent.connRate(
          {
            dial: hops[i]!.echo.dial,
            concurrency: sizes.connRateConcurrency,
            durationMs: sizes.connRateMs,
          },
          signal,
        ),
      );
      for (const [i, list] of runs.entries()) {
        if (!list.length) continue;
        const rates = list.map((r) => r.perSecond);
        const best = list[rates.indexOf(median(rates))]!;
        push('new connections/s', i, {
          unit: 'conn/s',
          value: median(rates),
          better: 'higher',
          extra: {
            ...spread(rates),
            connections: list.reduce((a, r) => a + r.connections, 0),
            'setup p50 ms': best.setupMs.p50,
            'setup p99 ms': best.setupMs.p99,
          },
        });
      }
    }

    if (figures.has('idle') && sizes.idleTunnels > 0) {
      for (const [i, hop] of hops.entries()) {
        const processes = hop.echo.processes;
        if (!processes.length) continue;
        await attempt(`${sizes.idleTunnels} idle connections`, i, async () => {
          const rss = () => processes.reduce((a, p) => a + sampleProcess(p.pid).rssBytes, 0);
          const before = rss();
          const idle = await clientAgent.idle(
            { dial: hop.echo.dial, count: sizes.idleTunnels },
            signal,
          );
          try {
            // Let the proxies settle (lazy allocations, freed handshake buffers) before reading.
            await new Promise((r) => setTimeout(r, ctx.quick ? 50 : 500));
            const after = rss();
            const extra: Record<string, number> = {
              connections: idle.count,
              'RSS before MiB': before / MiB,
              'RSS after MiB': after / MiB,
            };
            for (const p of processes) extra[`${p.name} threads`] = sampleProcess(p.pid).threads;
            push('RSS per idle connection', i, {
              unit: 'KiB/conn',
              value: (after - before) / 1024 / idle.count,
              better: 'lower',
              extra,
            });
          } finally {
            await idle.close();
          }
        });
      }
    }
  } finally {
    for (const hop of hops) {
      await hop.sink.close().catch(() => {});
      await hop.echo.close().catch(() => {});
    }
    for (const s of servers) await s.close().catch(() => {});
  }
  return { measurements: out, notes };
}

/** The direct-TCP path: the client connects to the server itself. */
export function directPath(localAddress?: string): TrafficPath {
  return {
    name: 'direct TCP',
    baseline: true,
    setup: async (server) => ({
      dial: { target: server, localAddress },
      processes: [],
      close: async () => {},
    }),
  };
}
