import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { once } from 'node:events';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import http from 'node:http';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Registry } from 'prom-client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  createMetricsHandler,
  OPENMETRICS_CONTENT_TYPE,
  outboundConnection,
  registerBuildInfo,
  TRAFFIC_LABEL_NAMES,
  TrafficMetrics,
} from '../src/index.js';
import { echo, echoService, sleep } from './fixtures.js';

const hasPrometheus = spawnSync('prometheus', ['--version']).status === 0;
// CI installs the Debian package, so there a missing binary fails the test instead of skipping.
const skip = !hasPrometheus && !process.env.CI;
if (skip) console.warn('prometheus binary not found: skipping the real-Prometheus test');

const MiB = 1 << 20;
const RESPONSE = 256 << 10;

async function freePort(): Promise<number> {
  const s = net.createServer().listen(0, '127.0.0.1');
  await once(s, 'listening');
  const { port } = s.address() as net.AddressInfo;
  await new Promise((r) => s.close(r));
  return port;
}

async function listen(server: net.Server): Promise<number> {
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  return (server.address() as net.AddressInfo).port;
}

interface Sample {
  metric: Record<string, string>;
  value: [number, string];
}

describe.skipIf(skip)('a real Prometheus scraping the stats endpoint', () => {
  const registry = new Registry();
  const traffic = new TrafficMetrics({ registry });
  registerBuildInfo({ registry, tag: '1.28.0' });
  const handler = createMetricsHandler(registry);
  const servedTypes: string[] = [];
  const servers: net.Server[] = [];
  const sockets = new Set<net.Socket>();
  let prometheus: ChildProcess | undefined;
  let promLog = '';
  let promUrl = '';
  let dir = '';
  let relayPort = 0;
  let deadPort = 0; // nothing listens here: connects fail with ECONNREFUSED

  function track<T extends net.Server>(server: T): T {
    servers.push(server);
    server.on('connection', (s) => {
      sockets.add(s);
      s.on('close', () => sockets.delete(s));
    });
    return server;
  }

  beforeAll(async () => {
    // Upstream: answers 256 KiB once it has 1 MiB, then closes when the client does.
    const backend = track(
      net.createServer((sock) => {
        let got = 0;
        sock.on('data', (c) => {
          got += c.length;
          if (got === MiB) sock.write(Buffer.alloc(RESPONSE, 7));
        });
        sock.on('end', () => sock.end());
        sock.on('error', () => {});
      }),
    );
    const backendPort = await listen(backend);
    deadPort = await freePort();

    // An instrumented TCP relay, the shape of ztunnel's outbound path.
    const relay = track(
      net.createServer((client) => {
        const conn = traffic.open(
          outboundConnection({
            source: sleep,
            destination: echo,
            destinationService: echoService,
            protocol: 'hbone',
          }),
          { src: `${client.remoteAddress}:${client.remotePort}`, dst: `127.0.0.1:${backendPort}` },
        );
        const upstream = net.connect(backendPort, '127.0.0.1');
        upstream.on('error', (err) => {
          conn.close({ flag: 'CONNECT', error: err });
          client.destroy();
        });
        client.on('error', () => upstream.destroy());
        client.on('data', (c) => conn.addRequestBytes(c.length));
        upstream.on('data', (c) => conn.addResponseBytes(c.length));
        client.pipe(upstream);
        upstream.pipe(client);
        upstream.on('close', () => conn.close());
      }),
    );
    relayPort = await listen(relay);

    const stats = http.createServer((req, res) => {
      const writeHead = res.writeHead.bind(res);
      res.writeHead = ((...args: Parameters<typeof res.writeHead>) => {
        servedTypes.push(
          String(
            res.getHeader('content-type') ?? (args[1] as Record<string, string>)?.['content-type'],
          ),
        );
        return writeHead(...args);
      }) as typeof res.writeHead;
      handler(req, res);
    });
    track(stats as unknown as net.Server);
    const statsPort = await listen(stats as unknown as net.Server);

    dir = await mkdtemp(join(tmpdir(), 'mesh-metrics-prom-'));
    await writeFile(
      join(dir, 'prometheus.yml'),
      [
        'global:',
        '  scrape_interval: 1s',
        '  scrape_timeout: 1s',
        'scrape_configs:',
        '  - job_name: ztunnel',
        '    metrics_path: /stats/prometheus',
        '    static_configs:',
        `      - targets: ['127.0.0.1:${statsPort}']`,
        '',
      ].join('\n'),
    );
    const webPort = await freePort();
    promUrl = `http://127.0.0.1:${webPort}`;
    prometheus = spawn(
      'prometheus',
      [
        `--config.file=${join(dir, 'prometheus.yml')}`,
        `--storage.tsdb.path=${join(dir, 'data')}`,
        `--web.listen-address=127.0.0.1:${webPort}`,
        '--log.level=warn',
      ],
      { stdio: ['ignore', 'pipe', 'pipe'] },
    );
    prometheus.stdout?.on('data', (d) => (promLog += d));
    prometheus.stderr?.on('data', (d) => (promLog += d));
    const deadline = Date.now() + 20_000;
    for (;;) {
      const status = (await fetch(`${promUrl}/-/ready`).catch(() => undefined))?.status;
      if (status === 200) break;
      if (prometheus.exitCode !== null || Date.now() > deadline) {
        throw new Error(
          `prometheus did not become ready (exit ${prometheus.exitCode}):\n${promLog}`,
        );
      }
      await new Promise((r) => setTimeout(r, 200));
    }
  });

  afterAll(async () => {
    if (prometheus && prometheus.exitCode === null) {
      prometheus.kill('SIGTERM');
      await once(prometheus, 'exit');
    }
    for (const s of sockets) s.destroy();
    await Promise.all(servers.map((s) => new Promise((r) => s.close(r))));
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  async function query(promql: string): Promise<Sample[]> {
    const res = await fetch(`${promUrl}/api/v1/query?query=${encodeURIComponent(promql)}`);
    const body = (await res.json()) as { status: string; data: { result: Sample[] } };
    if (body.status !== 'success') throw new Error(`query failed: ${JSON.stringify(body)}`);
    return body.data.result;
  }
  const scalar = async (promql: string) => {
    const [first] = await query(promql);
    return first === undefined ? undefined : Number(first.value[1]);
  };
  const poll = { timeout: 15_000, interval: 250 };

  it('sees the bytes of a 1 MiB transfer while the connection is open, then its close', async () => {
    const client = net.connect(relayPort, '127.0.0.1');
    sockets.add(client);
    await once(client, 'connect');
    let received = 0;
    const gotResponse = new Promise<void>((resolve) =>
      client.on('data', (c) => {
        received += c.length;
        if (received === RESPONSE) resolve();
      }),
    );
    client.write(Buffer.alloc(MiB, 1));
    await gotResponse;

    // Still open: the bytes must show up anyway (flushed at scrape time).
    const sel = '{job="ztunnel",reporter="source",destination_workload="echo-v2"}';
    await expect.poll(() => scalar(`sum(istio_tcp_received_bytes_total${sel})`), poll).toBe(MiB);
    expect(await scalar(`sum(istio_tcp_sent_bytes_total${sel})`)).toBe(RESPONSE);
    expect(await scalar(`sum(istio_tcp_connections_opened_total${sel})`)).toBe(1);
    expect(await scalar(`sum(istio_tcp_connections_closed_total${sel})`)).toBeUndefined();

    const [series] = await query(`istio_tcp_received_bytes_total${sel}`);
    const expected = Object.fromEntries(TRAFFIC_LABEL_NAMES.map((n) => [n, expect.any(String)]));
    expect(series?.metric).toEqual({
      ...expected,
      __name__: 'istio_tcp_received_bytes_total',
      job: 'ztunnel',
      instance: expect.any(String),
      source_principal: 'spiffe://cluster.local/ns/default/sa/sleep',
      destination_service: 'echo.echo.svc.cluster.local',
      connection_security_policy: 'mutual_tls',
      response_flags: '-',
      source_region: 'unknown',
    });

    client.end();
    await once(client, 'close');
    await expect.poll(() => scalar(`sum(istio_tcp_connections_closed_total${sel})`), poll).toBe(1);
    expect(await scalar(`sum(istio_tcp_received_bytes_total${sel})`)).toBe(MiB);
    expect(await scalar('istio_build{component="ztunnel",tag="1.28.0"}')).toBe(1);
    // Prometheus 2.x asks for OpenMetrics first; every scrape got it.
    expect(servedTypes.length).toBeGreaterThan(0);
    expect(new Set(servedTypes)).toEqual(new Set([OPENMETRICS_CONTENT_TYPE]));
    expect(await scalar('up{job="ztunnel"}')).toBe(1);
  });

  it('counts a refused upstream as closed and failed with response_flags="CONNECT"', async () => {
    // A relay whose upstream refuses connections.
    const dead = track(
      net.createServer((c) => {
        const conn = traffic.open(
          outboundConnection({ source: sleep, destination: echo, protocol: 'hbone' }),
          { src: `${c.remoteAddress}:${c.remotePort}`, dst: `127.0.0.1:${deadPort}` },
        );
        const upstream = net.connect(deadPort, '127.0.0.1');
        upstream.on('error', (err) => {
          conn.close({ flag: 'CONNECT', error: err });
          c.destroy();
        });
      }),
    );
    const deadRelay = await listen(dead);
    const victim = net.connect(deadRelay, '127.0.0.1');
    victim.on('error', () => {});
    await once(victim, 'close');
    await expect
      .poll(
        () =>
          scalar('sum(istio_tcp_connections_failed_total{job="ztunnel",response_flags="CONNECT"})'),
        poll,
      )
      .toBe(1);
    expect(
      await scalar(
        'sum(istio_tcp_connections_closed_total{job="ztunnel",response_flags="CONNECT"})',
      ),
    ).toBe(1);
    expect(promLog).not.toMatch(/level=error/);
  });
});
