import { once } from 'node:events';
import net from 'node:net';
import { performance } from 'node:perf_hooks';
import {
  outboundConnection,
  type RecordedConnection,
  renderRegistry,
  TrafficMetrics,
} from '@mesh/metrics';
import { Registry } from 'prom-client';
import type { Measurement, Scenario, ScenarioContext } from '../scenario.js';

const MiB = 1 << 20;

const workload = {
  name: 'sleep-1',
  namespace: 'default',
  workloadName: 'sleep',
  canonicalName: 'sleep',
  canonicalRevision: 'v1',
  trustDomain: 'cluster.local',
  serviceAccount: 'sleep',
  clusterId: 'Kubernetes',
};
const destination = { ...workload, name: 'echo-1', workloadName: 'echo', canonicalName: 'echo' };
const labelsInput = outboundConnection({ source: workload, destination, protocol: 'hbone' });

let chunks = 0;

/** Forwards with backpressure; the only difference between the variants is `count`. */
function copy(from: net.Socket, to: net.Socket, count?: (n: number) => void): void {
  from.on('data', (chunk: Buffer) => {
    chunks++;
    count?.(chunk.length);
    if (!to.write(chunk)) {
      from.pause();
      to.once('drain', () => from.resume());
    }
  });
  from.on('end', () => to.end());
  from.on('error', () => to.destroy());
}

async function listen(server: net.Server): Promise<number> {
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  return (server.address() as net.AddressInfo).port;
}

/** A TCP relay to `targetPort`, instrumented with `traffic` when given. */
function relay(targetPort: number, traffic?: TrafficMetrics): net.Server {
  return net.createServer((client) => {
    const upstream = net.connect(targetPort, '127.0.0.1');
    let conn: RecordedConnection | undefined;
    if (traffic) {
      const c = traffic.open(labelsInput, {
        src: `${client.remoteAddress}:${client.remotePort}`,
        dst: `127.0.0.1:${targetPort}`,
      });
      conn = c;
      copy(client, upstream, (n) => c.addRequestBytes(n));
      copy(upstream, client, (n) => c.addResponseBytes(n));
    } else {
      copy(client, upstream);
      copy(upstream, client);
    }
    upstream.on('close', () => {
      conn?.close();
      client.destroy();
    });
    client.on('close', () => upstream.destroy());
  });
}

/** Discards what it reads and closes when the client does. */
const sink = () =>
  net.createServer((s) => {
    s.on('data', () => {});
    s.on('end', () => s.end());
    s.on('error', () => {});
  });

/** Echoes everything back. */
const echo = () =>
  net.createServer((s) => {
    s.pipe(s);
    s.on('error', () => {});
  });

interface Sample {
  /** Throughput or rate over wall time. */
  rate: number;
  /** Process CPU microseconds per unit (MiB or connection). */
  cpuPerUnit: number;
}

function cpuMicros(): number {
  const u = process.cpuUsage();
  return u.user + u.system;
}

async function bulk(port: number, bytes: number): Promise<Sample> {
  const chunk = Buffer.alloc(64 << 10, 1);
  const sock = net.connect(port, '127.0.0.1');
  await once(sock, 'connect');
  const start = performance.now();
  const cpu0 = cpuMicros();
  let sent = 0;
  while (sent < bytes) {
    sent += chunk.length;
    if (!sock.write(chunk)) await once(sock, 'drain');
  }
  sock.end();
  sock.resume();
  await once(sock, 'close');
  const mib = bytes / MiB;
  return {
    rate: mib / ((performance.now() - start) / 1000),
    cpuPerUnit: (cpuMicros() - cpu0) / mib,
  };
}

async function shortConnections(port: number, count: number, concurrency: number): Promise<Sample> {
  const payload = Buffer.alloc(1024, 2);
  let next = 0;
  const one = async () => {
    const sock = net.connect(port, '127.0.0.1');
    await once(sock, 'connect');
    sock.write(payload);
    let got = 0;
    await new Promise<void>((resolve, reject) => {
      sock.on('data', (c: Buffer) => {
        got += c.length;
        if (got >= payload.length) sock.end();
      });
      sock.on('close', () => resolve());
      sock.on('error', reject);
    });
  };
  const start = performance.now();
  const cpu0 = cpuMicros();
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (next < count) {
        next++;
        await one();
      }
    }),
  );
  return {
    rate: count / ((performance.now() - start) / 1000),
    cpuPerUnit: (cpuMicros() - cpu0) / count,
  };
}

const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  const mid = s.length >> 1;
  return s.length % 2 ? s[mid]! : (s[mid - 1]! + s[mid]!) / 2;
};

async function run(ctx: ScenarioContext) {
  const rounds = ctx.quick ? 3 : 9;
  const bulkBytes = (ctx.quick ? 32 : 256) * MiB;
  const connCount = ctx.quick ? 200 : 2000;
  const registry = new Registry();
  const traffic = new TrafficMetrics({ registry });
  // Scrape once a second while measuring, so flushes are part of the cost (Prometheus
  // normally scrapes every 15 s).
  const scraper = setInterval(() => void renderRegistry(registry, 'prometheus'), 1000);
  const servers: net.Server[] = [];
  const start = async (s: net.Server) => {
    servers.push(s);
    return listen(s);
  };
  try {
    const sinkPort = await start(sink());
    const echoPort = await start(echo());
    // A second plain relay is the control: its difference from the first shows the noise floor.
    const bulkPorts = {
      plain: await start(relay(sinkPort)),
      control: await start(relay(sinkPort)),
      recorded: await start(relay(sinkPort, traffic)),
    };
    const connPorts = {
      plain: await start(relay(echoPort)),
      control: await start(relay(echoPort)),
      recorded: await start(relay(echoPort, traffic)),
    };
    type Variant = keyof typeof bulkPorts;
    const variants: Variant[] = ['plain', 'control', 'recorded'];
    const tp: Record<Variant, Sample[]> = { plain: [], control: [], recorded: [] };
    const cps: Record<Variant, Sample[]> = { plain: [], control: [], recorded: [] };
    let bulkChunks = 0;
    let bulkMiB = 0;
    for (const v of variants) await bulk(bulkPorts[v], 8 * MiB); // warm-up
    for (let i = 0; i < rounds; i++) {
      ctx.signal.throwIfAborted();
      // Rotate the order so drift and position effects fall on every variant alike.
      const order = variants.map((_, k) => variants[(k + i) % variants.length]!);
      for (const v of order) {
        const before = chunks;
        tp[v].push(await bulk(bulkPorts[v], bulkBytes));
        bulkChunks += chunks - before;
        bulkMiB += bulkBytes / MiB;
      }
      for (const v of order) cps[v].push(await shortConnections(connPorts[v], connCount, 8));
      ctx.log(
        `round ${i + 1}/${rounds}: ${variants.map((v) => tp[v].at(-1)!.rate.toFixed(0)).join('/')} MiB/s, ` +
          `${variants.map((v) => cps[v].at(-1)!.rate.toFixed(0)).join('/')} conn/s (plain/control/recorded)`,
      );
    }

    // In-process cost of the recorder alone, in CPU time (wall time would include other
    // processes' turns on a shared machine); best of five.
    const n = ctx.quick ? 20_000 : 100_000;
    const best = (f: () => number) => Math.min(...Array.from({ length: 5 }, f));
    const openClose = best(() => {
      const t = cpuMicros();
      for (let i = 0; i < n; i++) traffic.open(labelsInput, { src: 'a', dst: 'b' }).close();
      return (cpuMicros() - t) / n;
    });
    const conn = traffic.open(labelsInput, { src: 'a', dst: 'b' });
    const perChunk = best(() => {
      const m = n * 50;
      const t = cpuMicros();
      for (let i = 0; i < m; i++) conn.addRequestBytes(16384);
      return ((cpuMicros() - t) * 1000) / m;
    });
    conn.close();
    let scrape = Number.POSITIVE_INFINITY;
    for (let i = 0; i < 5; i++) {
      const t = cpuMicros();
      await renderRegistry(registry, 'prometheus');
      scrape = Math.min(scrape, (cpuMicros() - t) / 1000);
    }

    const rate = (xs: Sample[]) => median(xs.map((x) => x.rate));
    // Other load on the machine only ever adds CPU time, so the least of each side is the
    // figure least disturbed by it.
    const cpu = (xs: Sample[]) => Math.min(...xs.map((x) => x.cpuPerUnit));
    // Rounds run the two relays back to back, so each round's ratio shares its conditions.
    const paired = (plain: Sample[], recorded: Sample[]) =>
      (median(plain.map((p, i) => recorded[i]!.cpuPerUnit / p.cpuPerUnit)) - 1) * 100;
    const chunksPerMiB = bulkChunks / bulkMiB;
    // Recorder cost per unit, measured in isolation, over what the plain relay spends per unit.
    const estMiB = (((perChunk / 1000) * chunksPerMiB) / cpu(tp.plain)) * 100;
    const estConn = (openClose / cpu(cps.plain)) * 100;
    const measurements: Measurement[] = [
      {
        name: 'relay, no recording',
        unit: 'MiB/s',
        value: rate(tp.plain),
        better: 'higher',
        extra: { cpuMicrosPerMiB: cpu(tp.plain) },
      },
      {
        name: 'relay, recording',
        unit: 'MiB/s',
        value: rate(tp.recorded),
        better: 'higher',
        compareTo: ['relay, no recording'],
        extra: {
          cpuMicrosPerMiB: cpu(tp.recorded),
          cpuOverheadPercent: paired(tp.plain, tp.recorded),
          controlPercent: paired(tp.plain, tp.control),
          estimatedOverheadPercent: estMiB,
          chunksPerMiB,
        },
      },
      {
        name: 'short connections, no recording',
        unit: 'conn/s',
        value: rate(cps.plain),
        better: 'higher',
        extra: { cpuMicrosPerConn: cpu(cps.plain) },
      },
      {
        name: 'short connections, recording',
        unit: 'conn/s',
        value: rate(cps.recorded),
        better: 'higher',
        compareTo: ['short connections, no recording'],
        extra: {
          cpuMicrosPerConn: cpu(cps.recorded),
          cpuOverheadPercent: paired(cps.plain, cps.recorded),
          controlPercent: paired(cps.plain, cps.control),
          estimatedOverheadPercent: estConn,
        },
      },
      {
        name: 'open+close (labels, series lookup, log check; CPU)',
        unit: 'µs/conn',
        value: openClose,
        better: 'lower',
      },
      { name: 'count one chunk (CPU)', unit: 'ns/chunk', value: perChunk, better: 'lower' },
      { name: 'scrape render (CPU)', unit: 'ms', value: scrape, better: 'lower' },
    ];
    return {
      measurements,
      notes: [
        `${rounds} interleaved rounds; rates are medians, CPU per unit the least of the rounds; bulk ${bulkBytes / MiB} MiB per round through one connection, ` +
          `${connCount} short connections (1 KiB echoed) per round at concurrency 8.`,
        'Client, relay and upstream share one Node process on loopback; both relays use the same copy loop, the recording one adds one addRequestBytes/addResponseBytes call per chunk and open/close per connection.',
        'The registry is rendered once a second during the runs, so scrape-time flushes are included.',
        'cpuOverheadPercent is the median over rounds of the CPU-per-unit ratio of the two relays run back to back (noisy on a shared machine: controlPercent is the same figure for a second plain relay, i.e. the noise floor); estimatedOverheadPercent divides the recorder cost measured in isolation (per chunk × chunks per MiB, or open+close) by the plain relay CPU per unit, which is stable.',
      ],
    };
  } finally {
    clearInterval(scraper);
    await Promise.all(servers.map((s) => new Promise((r) => s.close(r))));
  }
}

const scenario: Scenario = {
  name: 'metrics/recording',
  description:
    'Cost of @mesh/metrics connection recording per MiB and per connection, against the same relay without recording',
  kind: 'micro',
  run,
};

export default scenario;
