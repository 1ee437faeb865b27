/**
 * iperf3 throughput figures through a list of paths: an independent, C traffic tool beside the
 * Node agents, so a reader can tell the load generator is not the bottleneck.
 */

import type { Measurement, ScenarioContext } from '../scenario.js';
import { runIperf3, startIperf3Server } from './iperf3.js';
import type { TrafficPath } from './suite.js';

/**
 * `iperf3 1 stream · <path>` and `iperf3 8 streams · <path>` for every path that a plain TCP
 * client can enter (not SOCKS5). Baselines before a path are named in `compareTo`.
 */
export async function iperf3Figures(
  ctx: ScenarioContext,
  paths: TrafficPath[],
  options: { seconds?: number; host?: string } = {},
): Promise<Measurement[]> {
  const seconds = options.seconds ?? (ctx.quick ? 1 : 3);
  const server = await startIperf3Server({ host: options.host, signal: ctx.signal });
  const out: Measurement[] = [];
  const usable: TrafficPath[] = [];
  const hops = [];
  try {
    for (const path of paths) {
      const hop = await path.setup(server.endpoint, 'sink', ctx.signal);
      if (hop.dial.socks5) {
        await hop.close();
        continue;
      }
      usable.push(path);
      hops.push(hop);
    }
    for (const streams of [1, 8]) {
      const figure = `iperf3 ${streams} stream${streams > 1 ? 's' : ''}`;
      for (const [i, path] of usable.entries()) {
        ctx.log(`${figure} via ${path.name}`);
        const r = await runIperf3({
          target: hops[i]!.dial.target,
          streams,
          seconds,
          signal: ctx.signal,
        });
        const base = usable
          .slice(0, i)
          .filter((p) => p.baseline)
          .map((p) => `${figure} · ${p.name}`);
        out.push({
          name: `${figure} · ${path.name}`,
          unit: 'Gb/s',
          value: r.gbps,
          better: 'higher',
          ...(base.length ? { compareTo: base } : {}),
          extra: {
            bytes: r.bytes,
            seconds: r.seconds,
            ...(r.retransmits !== undefined ? { retransmits: r.retransmits } : {}),
          },
        });
      }
    }
  } finally {
    for (const hop of hops) await hop.close().catch(() => {});
    await server.close();
  }
  return out;
}
