import type { LabelService, LabelWorkload, TrafficMetrics } from '@mesh/metrics';
import type { Service, Workload } from '@mesh/xds-client';
import type { Logger } from '../logging.js';

/** A workload as metric labels see it; the local file's empty trust domain / SA get xDS defaults. */
export function labelWorkload(w: Workload, trustDomain: string): LabelWorkload {
  return {
    name: w.name,
    namespace: w.namespace,
    workloadName: w.workloadName || w.name,
    canonicalName: w.canonicalName,
    canonicalRevision: w.canonicalRevision,
    trustDomain: w.trustDomain || trustDomain,
    serviceAccount: w.serviceAccount || 'default',
    clusterId: w.clusterId || 'Kubernetes',
    ...(w.locality ? { locality: { region: w.locality.region, zone: w.locality.zone } } : {}),
    services: w.services,
  };
}

export function labelService(s: Service): LabelService {
  return { hostname: s.hostname, name: s.name, namespace: s.namespace, ports: s.ports };
}

/** `ip:port`, with brackets for IPv6. */
export function hostPort(host: string | undefined, port: number | undefined): string {
  const h = host ?? 'unknown';
  return `${h.includes(':') ? `[${h}]` : h}:${port ?? 0}`;
}

/** Sends every access-log record of `traffic` to `logger` (one JSON line per connection). */
export function logAccess(traffic: TrafficMetrics, logger: Logger): () => void {
  const onRecord = (r: {
    level: 'debug' | 'info' | 'warn' | 'error';
    msg: string;
    fields: object;
  }) => logger[r.level](r.fields, r.msg);
  traffic.on('access-log', onRecord);
  return () => traffic.off('access-log', onRecord);
}
