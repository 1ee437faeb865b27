/**
 * The `baggage` header ztunnel sends on CONNECT (source workload) and on the 200 response
 * (destination workload), used to label metrics when the peer is not in local WDS state.
 */
export interface Baggage {
  clusterId?: string;
  namespace?: string;
  /** From `k8s.<deployment|cronjob|pod|job>.name`. */
  workloadName?: string;
  /** `service.name`: the canonical service. */
  serviceName?: string;
  /** `service.version`: the canonical revision. */
  revision?: string;
  region?: string;
  zone?: string;
}

/** Workload kinds ztunnel names in `k8s.<kind>.name`. */
export type BaggageWorkloadType = 'deployment' | 'cronjob' | 'pod' | 'job';

const WORKLOAD_KEYS = new Set([
  'k8s.deployment.name',
  'k8s.cronjob.name',
  'k8s.pod.name',
  'k8s.job.name',
]);

/**
 * Parses one or more `baggage` header values (Node gives a string, or an array for repeated
 * headers). Unknown keys and empty values are ignored; a later value wins, as in ztunnel.
 * Never throws: baggage is advisory and a malformed member is skipped.
 */
export function parseBaggage(header: string | readonly string[] | undefined): Baggage {
  const baggage: Baggage = {};
  if (header === undefined) return baggage;
  const values = typeof header === 'string' ? [header] : header;
  for (const value of values) {
    for (const member of value.split(',')) {
      const eq = member.indexOf('=');
      if (eq < 0) continue;
      const key = member.slice(0, eq).trim();
      // W3C baggage members may carry `;property` suffixes; they are not part of the value.
      const semi = member.indexOf(';', eq + 1);
      const raw = (semi < 0 ? member.slice(eq + 1) : member.slice(eq + 1, semi)).trim();
      const val = raw === '' ? undefined : raw;
      switch (key) {
        case 'k8s.cluster.name':
          baggage.clusterId = val;
          break;
        case 'k8s.namespace.name':
          baggage.namespace = val;
          break;
        case 'service.name':
          baggage.serviceName = val;
          break;
        case 'service.version':
          baggage.revision = val;
          break;
        case 'cloud.region':
          baggage.region = val;
          break;
        case 'cloud.availability_zone':
          baggage.zone = val;
          break;
        default:
          if (WORKLOAD_KEYS.has(key)) baggage.workloadName = val;
      }
    }
  }
  for (const key of Object.keys(baggage) as (keyof Baggage)[]) {
    if (baggage[key] === undefined) delete baggage[key];
  }
  return baggage;
}

/**
 * Encodes baggage the way ztunnel does: members in a fixed order, empty fields omitted,
 * the workload name under `k8s.<workloadType>.name`.
 */
export function encodeBaggage(baggage: Baggage, workloadType: BaggageWorkloadType): string {
  const members: string[] = [];
  const add = (key: string, value: string | undefined) => {
    if (value) members.push(`${key}=${value}`);
  };
  add('k8s.cluster.name', baggage.clusterId);
  add('k8s.namespace.name', baggage.namespace);
  add(`k8s.${workloadType}.name`, baggage.workloadName);
  add('service.name', baggage.serviceName);
  add('service.version', baggage.revision);
  add('cloud.region', baggage.region);
  add('cloud.availability_zone', baggage.zone);
  return members.join(',');
}

/** The workload fields baggage is built from (structurally a subset of xds-client's `Workload`). */
export interface BaggageWorkload {
  clusterId: string;
  namespace: string;
  workloadName: string;
  canonicalName: string;
  canonicalRevision: string;
  workloadType: string;
  locality?: { region: string; zone: string };
}

/** The `baggage` header value ztunnel sends for `workload` (request or response side). */
export function workloadBaggage(workload: BaggageWorkload): string {
  const type = workload.workloadType.toLowerCase();
  return encodeBaggage(
    {
      clusterId: workload.clusterId,
      namespace: workload.namespace,
      workloadName: workload.workloadName,
      serviceName: workload.canonicalName,
      revision: workload.canonicalRevision,
      region: workload.locality?.region,
      zone: workload.locality?.zone,
    },
    isWorkloadType(type) ? type : 'pod',
  );
}

function isWorkloadType(type: string): type is BaggageWorkloadType {
  return type === 'deployment' || type === 'cronjob' || type === 'pod' || type === 'job';
}
