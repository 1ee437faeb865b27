import diagnosticsChannel from 'node:diagnostics_channel';
import { once } from 'node:events';
import net from 'node:net';
import { Registry } from 'prom-client';
import { afterEach, describe, expect, it } from 'vitest';
import {
  ACCESS_LOG_CHANNEL,
  type AccessLogRecord,
  createZtunnelMetrics,
  inboundHboneConnection,
  inboundPlaintextConnection,
  MetricsError,
  outboundConnection,
  TRAFFIC_METRICS,
  TrafficMetrics,
  XdsMetrics,
} from '../src/index.js';
import { echo, echoService, sleep } from './fixtures.js';
import { samples, total } from './helpers.js';

const OPENED = TRAFFIC_METRICS.opened.name;
const CLOSED = TRAFFIC_METRICS.closed.name;
const FAILED = TRAFFIC_METRICS.failed.name;
const RECEIVED = TRAFFIC_METRICS.received.name;
const SENT = TRAFFIC_METRICS.sent.name;

const outbound = outboundConnection({
  source: sleep,
  destination: echo,
  destinationService: echoService,
  protocol: 'hbone',
});
const addrs = { src: '10.0.0.1:40000', dst: '10.0.0.2:15008', hboneAddr: '10.0.0.2:8080' };

const cleanups: (() => void)[] = [];
afterEach(() => {
  for (const c of cleanups.splice(0)) c();
});

function subscribe(): AccessLogRecord[] {
  const records: AccessLogRecord[] = [];
  const fn = (m: unknown) => records.push(m as AccessLogRecord);
  diagnosticsChannel.subscribe(ACCESS_LOG_CHANNEL, fn);
  cleanups.push(() => diagnosticsChannel.unsubscribe(ACCESS_LOG_CHANNEL, fn));
  return records;
}

describe('TrafficMetrics registration', () => {
  it('registers only on the registry passed, never on a global one', async () => {
    const { register } = await import('prom-client');
    const before = register.getMetricsAsArray().length;
    const registry = new Registry();
    new TrafficMetrics({ registry });
    expect(
      registry
        .getMetricsAsArray()
        .map((m) => (m as unknown as { name: string }).name)
        .sort(),
    ).toEqual(
      Object.values(TRAFFIC_METRICS)
        .map((m) => m.name)
        .sort(),
    );
    expect(register.getMetricsAsArray().length).toBe(before);
  });

  it('createZtunnelMetrics registers build, traffic and xDS series together', async () => {
    const registry = new Registry();
    const { traffic, xds } = createZtunnelMetrics({ registry, tag: '1.28.0' });
    traffic.open(outbound, addrs).close();
    xds.connectionTerminated('Complete');
    const text = await registry.metrics();
    expect(text).toContain('istio_build{component="ztunnel",tag="1.28.0"} 1');
    expect(text).toContain('istio_xds_connection_terminations_total{reason="Complete"} 1');
    expect(await total(registry, CLOSED)).toBe(1);
    expect(() => xds.connectionTerminated('Timeout' as never)).toThrowError(
      expect.objectContaining({ code: 'ERR_METRICS_INVALID_LABEL' }),
    );
    expect(() => xds.messageReceived('t', -1)).toThrowError(
      expect.objectContaining({ code: 'ERR_METRICS_INVALID_BYTE_COUNT' }),
    );
    // A clash on any name registers nothing at all.
    const clash = new Registry();
    new XdsMetrics({ registry: clash });
    expect(() => createZtunnelMetrics({ registry: clash, tag: 'x' })).toThrowError(
      expect.objectContaining({ code: 'ERR_METRICS_ALREADY_REGISTERED' }),
    );
    expect(clash.getSingleMetric(OPENED)).toBeUndefined();
  });

  it('throws typed errors without a registry or when the names are taken', () => {
    expect(() => new TrafficMetrics({} as never)).toThrowError(
      expect.objectContaining({ code: 'ERR_METRICS_REGISTRY_REQUIRED' }),
    );
    const registry = new Registry();
    new TrafficMetrics({ registry });
    expect(() => new TrafficMetrics({ registry })).toThrowError(
      expect.objectContaining({ code: 'ERR_METRICS_ALREADY_REGISTERED' }),
    );
  });
});

describe('RecordedConnection', () => {
  it('counts opens, bytes per direction and closes under the connection labels', async () => {
    const registry = new Registry();
    const metrics = new TrafficMetrics({ registry });
    const a = metrics.open(outbound, addrs);
    const b = metrics.open(outbound, addrs);
    a.addRequestBytes(100);
    a.addResponseBytes(7);
    b.addRequestBytes(1);
    expect(await total(registry, OPENED)).toBe(2);
    expect(await total(registry, RECEIVED)).toBe(101);
    expect(await total(registry, SENT)).toBe(7);
    expect(await total(registry, CLOSED)).toBe(0);
    expect(a.close()).toBe(true);
    expect(a.close()).toBe(false); // idempotent
    b.close();
    expect(await total(registry, CLOSED, { response_flags: '-' })).toBe(2);
    expect(await total(registry, FAILED)).toBe(0);
    const [opened] = await samples(registry, OPENED);
    expect(opened?.labels).toEqual({ ...a.labels });
    expect(metrics.openConnections).toBe(0);
  });

  it('keeps one series per distinct label set, with or without locality labels', async () => {
    const registry = new Registry();
    const metrics = new TrafficMetrics({ registry });
    const toSleep = outboundConnection({ source: sleep, destination: sleep, protocol: 'hbone' });
    const bare = { reporter: 'destination', connectionSecurityPolicy: 'unknown' } as const;
    for (const [input, n] of [
      [outbound, 3],
      [toSleep, 2],
      [bare, 1],
    ] as const) {
      for (let i = 0; i < n; i++) metrics.open(input, addrs).addRequestBytes(10);
    }
    const opened = await samples(registry, OPENED);
    expect(opened).toHaveLength(3);
    const byWorkload = Object.fromEntries(
      opened.map((s) => [s.labels.destination_workload, s.value]),
    );
    expect(byWorkload).toEqual({ 'echo-v2': 3, sleep: 2, unknown: 1 });
    const bareSample = opened.find((s) => s.labels.destination_workload === 'unknown');
    expect(bareSample?.labels).not.toHaveProperty('source_region');
    expect(await total(registry, RECEIVED, { destination_workload: 'sleep' })).toBe(20);
  });

  it('reports bytes of a long-lived connection at every collect while it stays open', async () => {
    const registry = new Registry();
    const metrics = new TrafficMetrics({ registry });
    const conn = metrics.open(outbound, addrs);
    conn.addRequestBytes(10);
    expect(await total(registry, RECEIVED)).toBe(10);
    conn.addRequestBytes(5);
    conn.addResponseBytes(3);
    expect(await total(registry, RECEIVED)).toBe(15);
    expect(await total(registry, SENT)).toBe(3);
    // nothing counted twice when collected again with no new bytes
    expect(await total(registry, RECEIVED)).toBe(15);
    // prom-client's own renderer collects too, so it sees the same totals
    conn.addRequestBytes(1);
    expect(await registry.metrics()).toMatch(
      /^istio_tcp_received_bytes_total\{reporter="source",.*\} 16$/m,
    );
    conn.close();
    conn.addResponseBytes(2); // a late chunk is not lost
    expect(await total(registry, SENT)).toBe(5);
  });

  it('a failure flag labels the close and counts in the failed counter; bytes stay on the "-" series', async () => {
    const registry = new Registry();
    const metrics = new TrafficMetrics({ registry });
    const conn = metrics.open(outbound, addrs);
    conn.addRequestBytes(42);
    conn.close({ flag: 'CONNECT', error: new Error('connection refused') });
    const denied = metrics.open(outbound, addrs);
    denied.close({ flag: 'DENY' });
    const reset = metrics.open(outbound, addrs);
    reset.close({ error: new Error('reset') }); // an error without a flag is not a failure
    expect(await total(registry, CLOSED, { response_flags: 'CONNECT' })).toBe(1);
    expect(await total(registry, CLOSED, { response_flags: 'DENY' })).toBe(1);
    expect(await total(registry, CLOSED, { response_flags: '-' })).toBe(1);
    expect(await total(registry, FAILED, { response_flags: 'CONNECT' })).toBe(1);
    expect(await total(registry, FAILED, { response_flags: 'DENY' })).toBe(1);
    expect(await total(registry, FAILED)).toBe(2);
    expect(await total(registry, RECEIVED, { response_flags: '-' })).toBe(42);
    expect(await total(registry, OPENED, { response_flags: '-' })).toBe(3);
  });

  it('rejects bad byte counts and unknown flags with typed errors and keeps counting', async () => {
    const registry = new Registry();
    const metrics = new TrafficMetrics({ registry });
    const conn = metrics.open(outbound, addrs);
    for (const bad of [-1, Number.NaN, Number.POSITIVE_INFINITY, '5' as unknown as number]) {
      expect(() => conn.addRequestBytes(bad)).toThrowError(
        expect.objectContaining({ code: 'ERR_METRICS_INVALID_BYTE_COUNT' }),
      );
      expect(() => conn.addResponseBytes(bad)).toThrow(MetricsError);
    }
    expect(() => conn.close({ flag: 'UF' as never })).toThrowError(
      expect.objectContaining({ code: 'ERR_METRICS_INVALID_RESPONSE_FLAG' }),
    );
    expect(conn.closed).toBe(false);
    conn.addRequestBytes(3);
    conn.close();
    expect(await total(registry, RECEIVED)).toBe(3);
    expect(await total(registry, CLOSED)).toBe(1);
  });

  it('closeAll records every open connection as ended by drain', async () => {
    const registry = new Registry();
    const metrics = new TrafficMetrics({ registry });
    const records: AccessLogRecord[] = [];
    metrics.on('access-log', (r) => records.push(r));
    metrics.open(outbound, addrs);
    metrics.open(outbound, addrs);
    metrics.closeAll();
    expect(metrics.openConnections).toBe(0);
    expect(await total(registry, CLOSED)).toBe(2);
    const complete = records.filter((r) => r.msg === 'connection complete');
    expect(complete).toHaveLength(2);
    expect(complete[0]?.level).toBe('error');
    expect(complete[0]?.fields.error).toBe('connection closed due to drain');
  });

  it('istio_tcp_sockets_open follows real sockets per reporter', async () => {
    const registry = new Registry();
    const metrics = new TrafficMetrics({ registry });
    const server = net.createServer((s) => metrics.trackSocket(s, 'destination'));
    server.listen(0, '127.0.0.1');
    await once(server, 'listening');
    cleanups.push(() => server.close());
    const { port } = server.address() as net.AddressInfo;
    const clients = await Promise.all(
      [0, 1, 2].map(async () => {
        const c = net.connect(port, '127.0.0.1');
        await once(c, 'connect');
        metrics.trackSocket(c, 'source');
        return c;
      }),
    );
    await expect
      .poll(() => total(registry, 'istio_tcp_sockets_open', { reporter: 'destination' }))
      .toBe(3);
    expect(await total(registry, 'istio_tcp_sockets_open', { reporter: 'source' })).toBe(3);
    // A socket that is already closed is not counted (its 'close' will never come again).
    const gone = net.connect(port, '127.0.0.1');
    gone.on('error', () => {});
    gone.destroy();
    await once(gone, 'close');
    metrics.trackSocket(gone, 'source');
    expect(await total(registry, 'istio_tcp_sockets_open', { reporter: 'source' })).toBe(3);
    for (const c of clients) c.destroy();
    await expect
      .poll(() => total(registry, 'istio_tcp_sockets_open', { reporter: 'destination' }))
      .toBe(0);
    expect(await total(registry, 'istio_tcp_sockets_open', { reporter: 'source' })).toBe(0);
  });
});

describe('access-log records', () => {
  it('outbound: ztunnel fields, identities over mTLS, bytes unflipped to the reporter view', async () => {
    const records = subscribe();
    const metrics = new TrafficMetrics({ registry: new Registry() });
    const conn = metrics.open(outbound, addrs);
    conn.addRequestBytes(1000);
    conn.addResponseBytes(20);
    conn.close();
    expect(records.map((r) => [r.level, r.msg])).toEqual([
      ['debug', 'connection opened'],
      ['info', 'connection complete'],
    ]);
    const { fields } = records[1]!;
    expect(fields).toEqual({
      'src.addr': '10.0.0.1:40000',
      'src.workload': 'sleep-6c7f-abcde',
      'src.namespace': 'default',
      'src.identity': 'spiffe://cluster.local/ns/default/sa/sleep',
      'src.cluster': 'Kubernetes',
      'dst.addr': '10.0.0.2:15008',
      'dst.hbone_addr': '10.0.0.2:8080',
      'dst.service': 'echo.echo.svc.cluster.local',
      'dst.workload': 'echo-v2-xyz',
      'dst.namespace': 'echo',
      'dst.identity': 'spiffe://cluster.local/ns/echo/sa/echo-sa',
      'dst.cluster': 'east',
      direction: 'outbound',
      bytes_sent: 1000,
      bytes_recv: 20,
      duration: expect.stringMatching(/^\d+ms$/),
    });
    expect(records[0]?.fields).not.toHaveProperty('bytes_sent');
  });

  it('inbound: bytes_sent is the response direction; failures log at error with the message', () => {
    const records = subscribe();
    const metrics = new TrafficMetrics({ registry: new Registry() });
    const conn = metrics.open(
      inboundHboneConnection({
        peerIdentity: 'spiffe://cluster.local/ns/default/sa/sleep',
        source: sleep,
        destination: echo,
        port: 8080,
      }),
      { src: '10.0.0.1:40000', dst: '10.0.0.2:15008', hboneAddr: '10.0.0.2:8080' },
    );
    conn.addRequestBytes(1000);
    conn.addResponseBytes(20);
    conn.close({ flag: 'CONNECT', error: new Error('connection refused') });
    const last = records.at(-1)!;
    expect(last.level).toBe('error');
    expect(last.labels?.response_flags).toBe('CONNECT');
    expect(last.fields).toMatchObject({
      direction: 'inbound',
      bytes_sent: 20,
      bytes_recv: 1000,
      error: 'connection refused',
      'src.identity': 'spiffe://cluster.local/ns/default/sa/sleep',
    });
  });

  it('plaintext: no identities and unknown fields left out', () => {
    const records = subscribe();
    const metrics = new TrafficMetrics({ registry: new Registry() });
    metrics
      .open(inboundPlaintextConnection({ destination: echo, port: 8080 }), {
        src: '10.0.0.9:1234',
        dst: '10.0.0.2:8080',
      })
      .close();
    const { fields } = records.at(-1)!;
    expect(fields).not.toHaveProperty('src.identity');
    expect(fields).not.toHaveProperty('dst.identity');
    expect(fields).not.toHaveProperty('src.workload');
    expect(fields).not.toHaveProperty('dst.hbone_addr');
    expect(fields).not.toHaveProperty('dst.service');
    expect(fields['dst.workload']).toBe('echo-v2-xyz');
  });

  it('early denies log a warn record with addresses and error only, and touch no counter', async () => {
    const records = subscribe();
    const registry = new Registry();
    const metrics = new TrafficMetrics({ registry });
    metrics.earlyDeny('10.0.0.1:1', '10.0.0.2:15008', 'destination', new Error('no identity'));
    expect(records).toEqual([
      {
        level: 'warn',
        msg: 'connection failed',
        fields: {
          'src.addr': '10.0.0.1:1',
          'dst.addr': '10.0.0.2:15008',
          direction: 'inbound',
          error: 'no identity',
        },
      },
    ]);
    expect(await samples(registry, OPENED)).toEqual([]);
  });
});
