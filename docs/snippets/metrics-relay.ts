import { once } from 'node:events';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { createMetricsHandler, outboundConnection, TrafficMetrics } from '@mesh/metrics';
import { Registry } from 'prom-client';

// Your registry: @mesh/metrics never registers on prom-client's global one.
const registry = new Registry();
const traffic = new TrafficMetrics({ registry });
traffic.on('access-log', (r) => console.log(`access log: ${r.level} ${r.msg}`));

const source = {
  name: 'sleep-5d8f',
  namespace: 'default',
  workloadName: 'sleep',
  canonicalName: 'sleep',
  canonicalRevision: 'v1',
  trustDomain: 'cluster.local',
  serviceAccount: 'sleep',
  clusterId: 'Kubernetes',
};
// Labels are resolved once per connection; byte counting is a number addition.
const conn = traffic.open(outboundConnection({ source, protocol: 'tcp' }), {
  src: '10.1.0.7:40312',
  dst: '10.1.0.5:8080',
});
conn.addRequestBytes(512);
conn.addResponseBytes(2048);
conn.close();

// The stats endpoint: GET /metrics or /stats/prometheus, OpenMetrics when asked for.
const stats = createServer(createMetricsHandler(registry)).listen(0, '127.0.0.1');
await once(stats, 'listening');
const res = await fetch(`http://127.0.0.1:${(stats.address() as AddressInfo).port}/metrics`);
const body = await res.text();
console.log(res.headers.get('content-type'));
console.log(body.split('\n').find((l) => l.startsWith('istio_tcp_sent_bytes_total{')));
stats.close();
