import { readFileSync } from 'node:fs';
import { createZtunnelMetrics, outboundConnection, renderRegistry } from '@mesh/metrics';
import { Registry } from 'prom-client';
import { describe, expect, it } from 'vitest';
import {
  allSeries,
  metricsReferencePath,
  renderMetricsReference,
} from '../scripts/metrics-reference.js';

describe('the metrics reference', () => {
  it('is exactly what the generator writes (run `pnpm --filter @mesh/docs metrics`)', () => {
    expect(readFileSync(metricsReferencePath, 'utf8')).toBe(renderMetricsReference());
  });

  it('documents every family a ztunnel registry exposes, with the labels it exposes', async () => {
    const registry = new Registry();
    const { traffic, xds } = createZtunnelMetrics({ registry, tag: '1.28.0' });
    const conn = traffic.open(
      outboundConnection({
        source: {
          name: 'sleep-1',
          namespace: 'default',
          workloadName: 'sleep',
          serviceAccount: 'sleep',
          canonicalName: 'sleep',
          canonicalRevision: 'v1',
          trustDomain: 'cluster.local',
          clusterId: 'Kubernetes',
        },
        protocol: 'tcp',
      }),
      { src: '10.0.0.1:40000', dst: '10.0.0.2:80' },
    );
    conn.addRequestBytes(10);
    conn.addResponseBytes(20);
    conn.close({ flag: 'CONNECT', error: new Error('refused') });
    xds.connectionTerminated('Reconnect');
    xds.messageReceived('type.googleapis.com/istio.workload.Address', 100);

    const text = await renderRegistry(registry, 'prometheus');
    const exposed = [...text.matchAll(/^# TYPE (\S+) (\S+)$/gm)].map((m) => [m[1], m[2]]);
    const doc = readFileSync(metricsReferencePath, 'utf8');
    for (const [name, type] of exposed) {
      const series = allSeries.find((s) => s.name === name);
      expect(series, `${name} is exposed but not defined`).toBeDefined();
      expect(series?.type).toBe(type);
      expect(doc).toContain(`| \`${name}\` | ${type} |`);
    }
    // Every label name on an exposed sample has a row in the reference.
    const labelNames = new Set(
      [...text.matchAll(/^\w+\{([^}]*)\}/gm)].flatMap((m) =>
        [...m[1].matchAll(/(\w+)="/g)].map((l) => l[1]),
      ),
    );
    expect(labelNames.size).toBeGreaterThan(20);
    for (const label of labelNames) expect(doc, label).toContain(`| \`${label}\` |`);
  });
});
