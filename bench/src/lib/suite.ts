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
import type { LatencySummary } from './stats.js';
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
        bulkMs: 4000,
        fixedRate: 1000,
        fixedConnections: 4,
        fixedMs: 5000,
        saturateConnections: 16,
        saturateMs: 3000,
        connRateConcurrency: 8,
        connRateMs: 3000,
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

/**
 * Run the standard figures over every path and return measurements named
 * `<figure> · <path>`. Each non-baseline path (and each baseline after the first) names the
 * baselines before it in `compareTo`.
 */
export async function comparePaths(
  ctx: ScenarioContext,
  options: ComparePathsOptions,
): Promise<Measurement[]> {
  const sizes = { ...suiteSizes(ctx.quick), ...options.sizes };
  const figures = new Set(options.figures ?? ['bulk', 'latency', 'connRate', 'idle']);
  const { paths, clientAgent, serverAgent } = options;
  const host = options.serverHost ?? '127.0.0.1';
  const signal = ctx.signal;
  const out: Measurement[] = [];
  const baselinesBefore = (i: number) =>
    paths
      .slice(0, i)
      .filter((p) => p.baseline)
      .map((p) => p.name);
  const push = (
    figure: string,
    i: number,
    m: Omit<Measurement, 'name' | 'compareTo'>,
    compare = true,
  ) => {
    const base = baselinesBefore(i)
      .map((b) => `${figure} · ${b}`)
      .filter((b) => out.some((m) => m.name === b));
    out.push({
      name: `${figure} · ${paths[i]!.name}`,
      ...m,
      ...(compare && base.length ? { compareTo: base } : {}),
    });
  };

  const servers: AgentServer[] = [];
  const hops: PathHop[][] = [];
  try {
    const sink = await serverAgent.sink(host);
    servers.push(sink);
    const echo = await serverAgent.echo(host);
    servers.push(echo);
    for (const path of paths) {
      const toSink = await path.setup({ host: sink.host, port: sink.port }, 'sink', signal);
      hops.push([toSink]);
      hops[hops.length - 1]!.push(
        await path.setup({ host: echo.host, port: echo.port }, 'echo', signal),
      );
    }

    if (figures.has('bulk')) {
      for (const [i] of paths.entries()) {
        for (const p of hops[i]![0]!.processes) resetPeakRss(p.pid);
      }
      const cpuPerGb: Array<{
        cpuSeconds: number;
        bytes: number;
        each: Array<{ name: string; cpuSeconds: number }>;
      }> = paths.map(() => ({ cpuSeconds: 0, bytes: 0, each: [] }));
      for (const connections of [1, 8]) {
        const figure = `throughput ${connections} conn${connections > 1 ? 's' : ''}`;
        for (const [i, path] of paths.entries()) {
          ctx.log(`${figure} via ${path.name}`);
          const hop = hops[i]![0]!;
          const meter = meterAll(hop.processes);
          meter.start();
          const r = await clientAgent.bulk(
            { dial: hop.dial, connections, durationMs: sizes.bulkMs },
            signal,
          );
          const cpu = meter.stop();
          const acc = cpuPerGb[i]!;
          acc.cpuSeconds += cpu.cpuSeconds;
          acc.bytes += r.bytes;
          for (const e of cpu.each) {
            const prev = acc.each.find((x) => x.name === e.name);
            if (prev) prev.cpuSeconds += e.cpuSeconds;
            else acc.each.push({ name: e.name, cpuSeconds: e.cpuSeconds });
          }
          push(figure, i, {
            unit: 'Gb/s',
            value: r.gbps,
            better: 'higher',
            extra: { bytes: r.bytes, seconds: r.seconds, 'proxy CPU s': cpu.cpuSeconds },
          });
        }
      }
      for (const [i, path] of paths.entries()) {
        const hop = hops[i]![0]!;
        if (!hop.processes.length) continue;
        const acc = cpuPerGb[i]!;
        const extra: Record<string, number> = {};
        for (const e of acc.each) extra[`${e.name} CPU s/GB`] = e.cpuSeconds / (acc.bytes / 1e9);
        push('CPU per GB', i, {
          unit: 'CPU-s/GB',
          value: acc.cpuSeconds / (acc.bytes / 1e9),
          better: 'lower',
          extra,
        });
        const rss: Record<string, number> = {};
        let total = 0;
        for (const p of hop.processes) {
          const peak = sampleProcess(p.pid).peakRssBytes / MiB;
          rss[`${p.name} MiB`] = peak;
          total += peak;
        }
        push('peak RSS under bulk (all proxies)', i, {
          unit: 'MiB',
          value: total,
          better: 'lower',
          extra: rss,
        });
        void path;
      }
    }

    if (figures.has('latency')) {
      const fixedFigure = `latency @${sizes.fixedRate} rps`;
      const direct: Record<string, LatencySummary> = {};
      for (const [i, path] of paths.entries()) {
        ctx.log(`${fixedFigure} via ${path.name}`);
        const hop = hops[i]![1]!;
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
        if (i === 0) direct.fixed = r.latencyMs;
        else if (direct.fixed) {
          push(`added latency @${sizes.fixedRate} rps`, i, {
            unit: 'ms',
            value: r.latencyMs.p50 - direct.fixed.p50,
            better: 'lower',
            extra: {
              p50: r.latencyMs.p50 - direct.fixed.p50,
              p90: r.latencyMs.p90 - direct.fixed.p90,
              p99: r.latencyMs.p99 - direct.fixed.p99,
            },
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
      }
      for (const [i, path] of paths.entries()) {
        ctx.log(`saturated latency via ${path.name}`);
        const r = await clientAgent.latency(
          {
            dial: hops[i]![1]!.dial,
            connections: sizes.saturateConnections,
            durationMs: sizes.saturateMs,
          },
          signal,
        );
        push(`latency saturated (${sizes.saturateConnections} conns)`, i, {
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
      }
    }

    if (figures.has('connRate')) {
      for (const [i, path] of paths.entries()) {
        ctx.log(`new connections via ${path.name}`);
        const r = await clientAgent.connRate(
          {
            dial: hops[i]![1]!.dial,
            concurrency: sizes.connRateConcurrency,
            durationMs: sizes.connRateMs,
          },
          signal,
        );
        push('new connections/s', i, {
          unit: 'conn/s',
          value: r.perSecond,
          better: 'higher',
          extra: {
            connections: r.connections,
            'setup p50 ms': r.setupMs.p50,
            'setup p99 ms': r.setupMs.p99,
          },
        });
      }
    }

    if (figures.has('idle') && sizes.idleTunnels > 0) {
      for (const [i, path] of paths.entries()) {
        const hop = hops[i]![1]!;
        if (!hop.processes.length) continue;
        ctx.log(`${sizes.idleTunnels} idle connections via ${path.name}`);
        const rss = () => hop.processes.reduce((a, p) => a + sampleProcess(p.pid).rssBytes, 0);
        const before = rss();
        const idle = await clientAgent.idle({ dial: hop.dial, count: sizes.idleTunnels }, signal);
        // Let lazily freed buffers settle before reading RSS.
        await new Promise((r) => setTimeout(r, ctx.quick ? 50 : 500));
        const after = rss();
        const extra: Record<string, number> = {
          tunnels: idle.count,
          'RSS before MiB': before / MiB,
          'RSS after MiB': after / MiB,
        };
        for (const p of hop.processes) extra[`${p.name} threads`] = sampleProcess(p.pid).threads;
        await idle.close();
        push('RSS per idle connection', i, {
          unit: 'KiB/conn',
          value: (after - before) / 1024 / idle.count,
          better: 'lower',
          extra,
        });
      }
    }
  } finally {
    for (const list of hops) for (const hop of list) await hop.close().catch(() => {});
    for (const s of servers) await s.close().catch(() => {});
  }
  return out;
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
