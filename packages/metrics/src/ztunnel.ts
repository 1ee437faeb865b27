import type { Registry } from 'prom-client';
import { BUILD_METRIC, registerBuildInfo, XDS_METRICS, XdsMetrics } from './meta.js';
import { assertRegistry } from './registry.js';
import { TRAFFIC_METRICS, TrafficMetrics } from './traffic.js';

export interface ZtunnelMetrics {
  traffic: TrafficMetrics;
  xds: XdsMetrics;
}

/**
 * Everything of ztunnel's `istio_` registry this package implements (`istio_build`, the
 * traffic series, the xDS counters) on `registry`. All names are checked first, so a clash
 * registers nothing.
 */
export function createZtunnelMetrics(options: { registry: Registry; tag: string }): ZtunnelMetrics {
  const registry = assertRegistry(
    options?.registry,
    [...Object.values(TRAFFIC_METRICS), ...Object.values(XDS_METRICS), BUILD_METRIC].map(
      (m) => m.name,
    ),
  );
  const traffic = new TrafficMetrics({ registry });
  const xds = new XdsMetrics({ registry });
  registerBuildInfo({ registry, tag: options.tag });
  return { traffic, xds };
}
