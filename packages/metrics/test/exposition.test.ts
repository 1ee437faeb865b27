import { execFile, spawn } from 'node:child_process';
import { once } from 'node:events';
import { readdirSync } from 'node:fs';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { gunzipSync } from 'node:zlib';
import { collectDefaultMetrics, Gauge, Histogram, Registry } from 'prom-client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  createMetricsHandler,
  inboundPlaintextConnection,
  negotiateFormat,
  OPENMETRICS_CONTENT_TYPE,
  outboundConnection,
  PROMETHEUS_CONTENT_TYPE,
  registerBuildInfo,
  renderRegistry,
  TrafficMetrics,
  XdsMetrics,
} from '../src/index.js';
import { echo, echoService, sleep, workload } from './fixtures.js';

const run = promisify(execFile);

/** Runs promtool with `input` on stdin; resolves with exit code and output. */
function promtool(args: string[], input?: string): Promise<{ code: number; out: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn('promtool', args, { stdio: ['pipe', 'pipe', 'pipe'] });
    let out = '';
    child.stdout.on('data', (d) => (out += d));
    child.stderr.on('data', (d) => (out += d));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code: code ?? -1, out }));
    child.stdin.end(input ?? '');
  });
}

/** A registry holding every series this package makes, plus prom-client's own kinds. */
function populated(defaults = true): Registry {
  const registry = new Registry();
  const traffic = new TrafficMetrics({ registry });
  registerBuildInfo({ registry, tag: '1.28.0' });
  const xds = new XdsMetrics({ registry });
  xds.messageReceived('type.googleapis.com/istio.workload.Address', 2048);
  xds.messageReceived('type.googleapis.com/istio.security.Authorization', 0);
  xds.connectionTerminated('Reconnect');
  const a = traffic.open(
    outboundConnection({
      source: sleep,
      destination: echo,
      destinationService: echoService,
      protocol: 'hbone',
    }),
    { src: '10.0.0.1:1', dst: '10.0.0.2:15008' },
  );
  a.addRequestBytes(1_048_576);
  a.addResponseBytes(12);
  a.close({ flag: 'CONNECT', error: 'refused' });
  // Awkward label values must be escaped, never break the exposition.
  const odd = workload({ workloadName: 'we"ird\\name\nx', canonicalName: '' });
  traffic.open(inboundPlaintextConnection({ source: odd, destination: echo, port: 1 }), {
    src: '1.1.1.1:1',
    dst: '2.2.2.2:2',
  });
  // A series without locality labels next to ones with them.
  traffic.open(
    { reporter: 'destination', connectionSecurityPolicy: 'unknown' },
    { src: 'a', dst: 'b' },
  );
  traffic.trackSocket({ once() {} }, 'source');
  if (defaults) collectDefaultMetrics({ register: registry });
  new Histogram({ name: 'test_latency_seconds', help: 'x', registers: [registry] }).observe(0.2);
  return registry;
}

describe('exposition formats checked by promtool', () => {
  it('the Prometheus text format passes `promtool check metrics` without a lint finding', async () => {
    // prom-client's default Node metrics are left out: three of them (nodejs_active_*_total
    // gauges) draw promtool's naming lint, which says nothing about this package.
    const text = await renderRegistry(populated(false), 'prometheus');
    expect(text).toContain('istio_tcp_received_bytes_total{reporter="source"');
    expect(text).toContain('source_workload="we\\"ird\\\\name\\nx"');
    const { code, out } = await promtool(['check', 'metrics'], text);
    expect(out).toBe('');
    expect(code).toBe(0);
  });

  it('the OpenMetrics format is parsed by promtool’s OpenMetrics importer with the right values', async () => {
    const om = await renderRegistry(populated(), 'openmetrics');
    expect(om.endsWith('# EOF\n')).toBe(true);
    expect(om).toContain('# TYPE istio_tcp_received_bytes counter\n');
    expect(om).toMatch(/^istio_tcp_received_bytes_total\{/m);
    // The importer needs timestamps; give every sample one, leaving everything else as served.
    const ts = Math.floor(Date.now() / 1000);
    const stamped = om
      .split('\n')
      .map((line) => (line === '' || line.startsWith('#') ? line : `${line} ${ts}`))
      .join('\n');
    const dir = await mkdtemp(join(tmpdir(), 'mesh-metrics-om-'));
    try {
      await writeFile(join(dir, 'in.om'), stamped);
      const created = await promtool([
        'tsdb',
        'create-blocks-from',
        'openmetrics',
        join(dir, 'in.om'),
        join(dir, 'blocks'),
      ]);
      expect(created.out).not.toMatch(/error/i);
      expect(created.code).toBe(0);
      await mkdir(join(dir, 'blocks', 'wal'), { recursive: true });
      const { stdout } = await run('promtool', ['tsdb', 'dump', join(dir, 'blocks')], {
        maxBuffer: 64 << 20,
      });
      const received = stdout
        .split('\n')
        .find(
          (l) =>
            l.includes('__name__="istio_tcp_received_bytes_total"') &&
            l.includes('reporter="source"'),
        );
      const value = (line: string | undefined) => Number(line?.split(' ').at(-2));
      expect(value(received)).toBe(1_048_576);
      const failed = stdout
        .split('\n')
        .find((l) => l.includes('__name__="istio_tcp_connections_failed_total"'));
      expect(failed).toContain('response_flags="CONNECT"');
      const lines = stdout.split('\n');
      expect(
        value(
          lines.find((l) => l.includes('__name__="istio_build"') && l.includes('tag="1.28.0"')),
        ),
      ).toBe(1);
      expect(
        value(
          lines.find(
            (l) =>
              l.includes('__name__="istio_xds_message_bytes_total"') &&
              l.includes('url="type.googleapis.com/istio.workload.Address"'),
          ),
        ),
      ).toBe(2048);
      // prom-client's own histograms came through the OpenMetrics parser too.
      expect(
        lines.some(
          (l) => l.includes('__name__="test_latency_seconds_bucket"') && l.includes('le="+Inf"'),
        ),
      ).toBe(true);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('omits families without samples, as ztunnel does', async () => {
    const registry = new Registry();
    new TrafficMetrics({ registry });
    expect(await renderRegistry(registry, 'prometheus')).toBe('');
    expect(await renderRegistry(registry, 'openmetrics')).toBe('# EOF\n');
  });
});

describe('renderRegistry', () => {
  it('rejects with the abort reason when the signal is aborted', async () => {
    const reason = new Error('scrape cancelled');
    await expect(
      renderRegistry(populated(false), 'prometheus', { signal: AbortSignal.abort(reason) }),
    ).rejects.toBe(reason);
  });
});

describe('negotiateFormat', () => {
  it('follows ztunnel: OpenMetrics when any Accept entry names it, else text', () => {
    expect(negotiateFormat(undefined)).toBe('prometheus');
    expect(negotiateFormat('application/json')).toBe('prometheus');
    expect(negotiateFormat(['application/json', 'application/openmetrics-text; other stuff'])).toBe(
      'openmetrics',
    );
    expect(
      negotiateFormat(
        'application/vnd.google.protobuf;proto=io.prometheus.client.MetricFamily;encoding=delimited;q=0.6,application/openmetrics-text;version=1.0.0;escaping=allow-utf-8;q=0.5,text/plain;version=0.0.4;q=0.2,*/*;q=0.1',
      ),
    ).toBe('openmetrics');
    expect(negotiateFormat('Application/OpenMetrics-Text;q=0, text/plain')).toBe('prometheus');
  });
});

describe('createMetricsHandler', () => {
  let server: http.Server;
  let base: string;
  const registry = populated();
  const failing = new Registry();
  new Gauge({
    name: 'broken',
    help: 'collect throws',
    registers: [failing],
    collect() {
      throw new Error('boom');
    },
  });

  beforeAll(async () => {
    const metrics = createMetricsHandler(registry);
    const broken = createMetricsHandler(failing, { paths: ['/broken'] });
    server = http.createServer((req, res) =>
      metrics(req, res, () =>
        broken(req, res, () => {
          res.writeHead(418).end('fallthrough');
        }),
      ),
    );
    server.listen(0, '127.0.0.1');
    await once(server, 'listening');
    base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });
  afterAll(async () => {
    server.closeAllConnections();
    await new Promise((r) => server.close(r));
  });

  async function get(path: string, headers: Record<string, string> = {}, method = 'GET') {
    return new Promise<{ status: number; headers: http.IncomingHttpHeaders; body: Buffer }>(
      (resolve, reject) => {
        const req = http.request(`${base}${path}`, { method, headers }, (res) => {
          const chunks: Buffer[] = [];
          res.on('data', (c) => chunks.push(c));
          res.on('end', () =>
            resolve({
              status: res.statusCode ?? 0,
              headers: res.headers,
              body: Buffer.concat(chunks),
            }),
          );
        });
        req.on('error', reject);
        req.end();
      },
    );
  }

  it('serves the text format on /metrics and /stats/prometheus by default', async () => {
    for (const path of ['/metrics', '/stats/prometheus', '/metrics?x=1']) {
      const res = await get(path);
      expect(res.status).toBe(200);
      expect(res.headers['content-type']).toBe(PROMETHEUS_CONTENT_TYPE);
      const body = res.body.toString();
      expect(body).toContain('# TYPE istio_tcp_connections_opened_total counter');
      expect(body).not.toContain('# EOF');
    }
  });

  it('serves OpenMetrics when Accept asks for it, gzipped when allowed', async () => {
    const res = await get('/stats/prometheus', {
      accept: 'application/openmetrics-text;version=1.0.0,text/plain;version=0.0.4;q=0.5',
      'accept-encoding': 'gzip',
    });
    expect(res.status).toBe(200);
    expect(res.headers['content-type']).toBe(OPENMETRICS_CONTENT_TYPE);
    expect(res.headers['content-encoding']).toBe('gzip');
    const body = gunzipSync(res.body).toString();
    expect(body).toContain('# TYPE istio_tcp_connections_opened counter');
    expect(body.endsWith('# EOF\n')).toBe(true);
    expect(Number(res.headers['content-length'])).toBe(res.body.length);
  });

  it('answers HEAD without a body, 405 for other methods, and 404 or next() for other paths', async () => {
    const head = await get('/metrics', {}, 'HEAD');
    expect(head.status).toBe(200);
    expect(head.body.length).toBe(0);
    expect(Number(head.headers['content-length'])).toBeGreaterThan(0);
    const post = await get('/metrics', {}, 'POST');
    expect(post.status).toBe(405);
    expect(post.headers.allow).toBe('GET, HEAD');
    expect((await get('/elsewhere')).status).toBe(418);
    const lone = http.createServer(createMetricsHandler(registry));
    lone.listen(0, '127.0.0.1');
    await once(lone, 'listening');
    try {
      const res = await fetch(`http://127.0.0.1:${(lone.address() as AddressInfo).port}/nope`);
      expect(res.status).toBe(404);
    } finally {
      await new Promise((r) => lone.close(r));
    }
  });

  it('a collect failure answers 500 with the error code and the server keeps serving', async () => {
    const res = await get('/broken');
    expect(res.status).toBe(500);
    expect(res.body.toString()).toMatch(
      /^ERR_METRICS_COLLECT_FAILED: collecting metrics failed: boom/,
    );
    expect((await get('/metrics')).status).toBe(200);
  });

  it('bad requests and failing collects leave no file descriptors behind', async () => {
    const fds = () => readdirSync('/proc/self/fd').length;
    const agent = new http.Agent({ keepAlive: false });
    const baseline = fds();
    for (let i = 0; i < 20; i++) {
      for (const [path, method] of [
        ['/metrics', 'POST'],
        ['/broken', 'GET'],
        ['/elsewhere', 'GET'],
        ['/metrics', 'DELETE'],
      ] as const) {
        await new Promise<void>((resolve, reject) => {
          const req = http.request(`${base}${path}`, { method, agent }, (res) => {
            res.resume();
            res.on('end', resolve);
          });
          req.on('error', reject);
          req.end();
        });
      }
      // Garbage that is not HTTP at all: node:http answers 400 and closes.
      const raw = net.connect((server.address() as AddressInfo).port, '127.0.0.1');
      raw.end('\x16\x03\x01 not http\r\n\r\n');
      raw.resume();
      await once(raw, 'close');
    }
    agent.destroy();
    await expect.poll(fds, { timeout: 5000 }).toBeLessThanOrEqual(baseline);
    expect((await get('/metrics')).status).toBe(200);
  });

  it('refuses to build without a registry', () => {
    expect(() => createMetricsHandler(undefined as never)).toThrowError(
      expect.objectContaining({ code: 'ERR_METRICS_REGISTRY_REQUIRED' }),
    );
  });
});
