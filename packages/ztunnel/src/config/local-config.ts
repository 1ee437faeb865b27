import { readFile } from 'node:fs/promises';
import { isIP } from 'node:net';
import {
  type Authorization,
  type IpCidr,
  localConfigYamlTags,
  policyFromLocalConfig,
} from '@mesh/l4-rbac';
import type {
  GatewayAddress,
  LoadBalancing,
  Port,
  Service,
  ServiceAddress,
  WeightedWaypoint,
  Workload,
} from '@mesh/xds-client';
import { parseDocument } from 'yaml';
import { ZtunnelError } from '../errors.js';
import {
  bool,
  choice,
  ip,
  list,
  mapOf,
  Problems,
  port,
  type Reader,
  record,
  str,
  uint,
} from './schema.js';

/** The decoded local config file: the same shapes `@mesh/xds-client` and `@mesh/l4-rbac` use. */
export interface LocalConfig {
  workloads: Workload[];
  services: Service[];
  policies: Authorization[];
}

/**
 * Parses ztunnel's local config YAML (spec §3): camelCase keys, unknown keys rejected, and no
 * xDS defaults (an empty `trustDomain` stays empty). Every problem is reported at once in one
 * `ZtunnelError` `ERR_ZTUNNEL_LOCAL_CONFIG_INVALID`.
 */
export function parseLocalConfig(source: string, origin = 'local config'): LocalConfig {
  const p = new Problems();
  const doc = parseDocument(source, {
    customTags: localConfigYamlTags,
    uniqueKeys: true,
    prettyErrors: false,
  });
  for (const e of doc.errors) p.add('', `YAML: ${e.message.split('\n')[0]}`);
  for (const w of doc.warnings) p.add('', `YAML: ${w.message.split('\n')[0]}`);
  const result: LocalConfig = { workloads: [], services: [], policies: [] };
  if (doc.errors.length === 0) {
    const root = doc.toJS({ maxAliasCount: 100 }) as unknown;
    if (root !== null && root !== undefined) {
      const top = record(p, '', root, {
        workloads: list(readWorkload),
        services: list(readService),
        policies: list(readPolicy),
      });
      result.workloads = top?.workloads ?? [];
      result.services = top?.services ?? [];
      result.policies = top?.policies ?? [];
      checkUnique(
        p,
        'workloads',
        result.workloads.map((w) => w.uid),
      );
      checkUnique(
        p,
        'services',
        result.services.map((s) => `${s.namespace}/${s.hostname}`),
      );
      checkUnique(
        p,
        'policies',
        result.policies.map((x) => `${x.namespace}/${x.name}`),
      );
    }
  }
  if (p.list.length > 0) {
    throw new ZtunnelError(
      'ERR_ZTUNNEL_LOCAL_CONFIG_INVALID',
      `${origin} is invalid (${p.list.length} problem${p.list.length === 1 ? '' : 's'}):\n${p.list.map((x) => `  - ${x}`).join('\n')}`,
      { problems: p.list },
    );
  }
  return result;
}

/** Reads and parses a local config file. */
export async function loadLocalConfigFile(path: string, options: { signal?: AbortSignal } = {}) {
  let text: string;
  try {
    text = await readFile(path, { encoding: 'utf8', signal: options.signal });
  } catch (err) {
    const msg = `local config file ${path} cannot be read: ${(err as Error).message}`;
    throw new ZtunnelError('ERR_ZTUNNEL_LOCAL_CONFIG_INVALID', msg, {
      cause: err,
      problems: [msg],
    });
  }
  return parseLocalConfig(text, `local config file ${path}`);
}

function checkUnique(p: Problems, what: string, keys: string[]) {
  const seen = new Set<string>();
  for (const k of keys) {
    if (seen.has(k)) p.add(what, `duplicate entry "${k}"`);
    seen.add(k);
  }
}

/** `network/IP` (IP form, tried first) or `namespace/hostname`. */
const gatewayDestination: Reader<GatewayAddress['destination']> = (p, path, v) => {
  const s = str(p, path, v);
  if (s === undefined) return undefined;
  const i = s.indexOf('/');
  if (i < 0) return p.add(path, `"${s}" must be "network/IP" or "namespace/hostname"`);
  const [a, b] = [s.slice(0, i), s.slice(i + 1)];
  if (isIP(b)) return { kind: 'address', network: a, address: b };
  if (a === '' || b === '')
    return p.add(path, `"${s}" must be "network/IP" or "namespace/hostname"`);
  return { kind: 'hostname', namespace: a, hostname: b };
};

const gateway: Reader<GatewayAddress> = (p, path, v) => {
  const r = record(p, path, v, { destination: gatewayDestination, hboneMtlsPort: port }, [
    'destination',
  ]);
  if (!r?.destination) return undefined;
  return { destination: r.destination, hboneMtlsPort: r.hboneMtlsPort ?? 15008 };
};

const portMap: Reader<[number, number][]> = mapOf(port, port);

const serviceKey: Reader<string> = (p, path, v) => {
  const s = str(p, path, v);
  if (s === undefined) return undefined;
  return /^[^/]+\/[^/]+$/.test(s)
    ? s
    : p.add(path, `service key "${s}" must be "namespace/hostname"`);
};

function toPorts(pairs: [number, number][]): Port[] {
  return pairs.map(([servicePort, targetPort]) => ({
    servicePort,
    targetPort,
    appProtocol: 'UNKNOWN',
  }));
}

const readWorkload: Reader<Workload> = (p, path, v) => {
  const r = record(
    p,
    path,
    v,
    {
      uid: str,
      name: str,
      namespace: str,
      workloadIps: list(ip),
      hostname: str,
      network: str,
      protocol: choice({ TCP: 'NONE', HBONE: 'HBONE' } as const),
      trustDomain: str,
      serviceAccount: str,
      waypoint: gateway,
      networkGateway: gateway,
      node: str,
      canonicalName: str,
      canonicalRevision: str,
      workloadType: choice({
        deployment: 'DEPLOYMENT',
        cronjob: 'CRONJOB',
        pod: 'POD',
        job: 'JOB',
      } as const),
      workloadName: str,
      nativeTunnel: bool,
      authorizationPolicies: list(str),
      status: choice({ Healthy: 'HEALTHY', Unhealthy: 'UNHEALTHY' } as const),
      clusterId: str,
      applicationTunnel: (p2, path2, v2) => {
        const t = record(p2, path2, v2, {
          protocol: choice({ NONE: 'NONE', PROXY: 'PROXY' } as const),
          port,
        });
        if (!t) return undefined;
        return { protocol: t.protocol ?? 'NONE', ...(t.port ? { port: t.port } : {}) };
      },
      locality: (p2, path2, v2) => {
        const l = record(p2, path2, v2, { region: str, zone: str, subzone: str });
        return l && { region: l.region ?? '', zone: l.zone ?? '', subzone: l.subzone ?? '' };
      },
      networkMode: choice({ Standard: 'STANDARD', HostNetwork: 'HOST_NETWORK' } as const),
      capacity: uint(0xffff_ffff),
      services: mapOf(serviceKey, portMap),
    },
    ['workloadIps', 'namespace'],
  );
  if (!r || r.namespace === undefined) return undefined;
  const addresses = r.workloadIps ?? [];
  const name = r.name ?? '';
  const w: Workload = {
    uid:
      r.uid ||
      `${r.clusterId ?? ''}//Pod/${r.namespace}/${name || addresses[0] || r.hostname || ''}`,
    name,
    namespace: r.namespace,
    addresses,
    hostname: r.hostname ?? '',
    network: r.network ?? '',
    tunnelProtocol: r.protocol ?? 'NONE',
    trustDomain: r.trustDomain ?? '',
    serviceAccount: r.serviceAccount ?? '',
    node: r.node ?? '',
    canonicalName: r.canonicalName ?? '',
    canonicalRevision: r.canonicalRevision ?? '',
    workloadType: r.workloadType ?? 'DEPLOYMENT',
    workloadName: r.workloadName ?? '',
    nativeTunnel: r.nativeTunnel ?? false,
    authorizationPolicies: r.authorizationPolicies ?? [],
    status: r.status ?? 'HEALTHY',
    clusterId: r.clusterId ?? '',
    services: Object.fromEntries((r.services ?? []).map(([k, ports]) => [k, toPorts(ports)])),
    networkMode: r.networkMode ?? 'STANDARD',
    capacity: r.capacity ?? 1,
  };
  if (r.waypoint) w.waypoint = r.waypoint;
  if (r.networkGateway) w.networkGateway = r.networkGateway;
  if (r.applicationTunnel) w.applicationTunnel = r.applicationTunnel;
  if (r.locality) w.locality = r.locality;
  if (addresses.length === 0 && !w.hostname && !w.networkGateway) {
    p.add(path, 'a workload needs workloadIps, a hostname or a networkGateway');
  }
  return w;
};

function networkAddress(allowCidr: boolean): Reader<ServiceAddress> {
  return (p, path, v) => {
    const s = str(p, path, v);
    if (s === undefined) return undefined;
    const i = s.indexOf('/');
    const what = allowCidr ? '"network/IP/prefix"' : '"network/IP" (e.g. "/10.96.0.10")';
    if (i < 0) return p.add(path, `"${s}" must be ${what}`);
    const network = s.slice(0, i);
    const rest = s.slice(i + 1);
    if (!allowCidr)
      return isIP(rest) ? { network, address: rest } : p.add(path, `"${s}" must be ${what}`);
    const c = cidrOf(rest);
    return c
      ? { network, address: c.address, prefixLength: c.prefixLength }
      : p.add(path, `"${s}" must be ${what}`);
  };
}

function cidrOf(s: string): IpCidr | undefined {
  const [addr, len, extra] = s.split('/');
  const fam = isIP(addr ?? '');
  if (!fam || extra !== undefined) return undefined;
  const max = fam === 4 ? 32 : 128;
  if (len === undefined) return { address: addr!, prefixLength: max };
  if (!/^\d+$/.test(len) || Number(len) > max) return undefined;
  return { address: addr!, prefixLength: Number(len) };
}

const loadBalancer: Reader<LoadBalancing> = (p, path, v) => {
  const r = record(p, path, v, {
    routingPreferences: list(
      choice({
        Region: 'REGION',
        Zone: 'ZONE',
        Subzone: 'SUBZONE',
        Node: 'NODE',
        Cluster: 'CLUSTER',
        Network: 'NETWORK',
      } as const),
    ),
    mode: choice({
      Standard: 'UNSPECIFIED_MODE',
      Strict: 'STRICT',
      Failover: 'FAILOVER',
      Passthrough: 'PASSTHROUGH',
    } as const),
    healthPolicy: choice({ OnlyHealthy: 'ONLY_HEALTHY', AllowAll: 'ALLOW_ALL' } as const),
  });
  return (
    r && {
      routingPreference: r.routingPreferences ?? [],
      mode: r.mode ?? 'UNSPECIFIED_MODE',
      healthPolicy: r.healthPolicy ?? 'ONLY_HEALTHY',
    }
  );
};

const readService: Reader<Service> = (p, path, v) => {
  const r = record(
    p,
    path,
    v,
    {
      name: str,
      namespace: str,
      hostname: str,
      vips: list(networkAddress(false)),
      cidrVips: list(networkAddress(true)),
      ports: portMap,
      subjectAltNames: list(str),
      waypoint: gateway,
      weightedWaypoints: list((p2, path2, v2): WeightedWaypoint | undefined => {
        const w = record(
          p2,
          path2,
          v2,
          { destination: gatewayDestination, weight: uint(0xffff_ffff) },
          ['destination'],
        );
        return (
          w?.destination && {
            destination: { destination: w.destination, hboneMtlsPort: 15008 },
            weight: w.weight ?? 1,
          }
        );
      }),
      loadBalancer,
      ipFamilies: choice({ Dual: 'DUAL', IPv4: 'IPV4_ONLY', IPv6: 'IPV6_ONLY' } as const),
      canonical: bool,
      visibility: choice({ Public: 'PUBLIC', Namespace: 'NAMESPACE' } as const),
      endpoints: (p2, path2) =>
        p2.add(
          path2,
          'endpoints are derived from each workload\'s "services" map; list the service there',
        ),
    },
    ['name', 'namespace', 'hostname'],
  );
  if (!r || r.name === undefined || r.namespace === undefined || r.hostname === undefined)
    return undefined;
  const s: Service = {
    name: r.name,
    namespace: r.namespace,
    hostname: r.hostname,
    addresses: [...(r.vips ?? []), ...(r.cidrVips ?? [])],
    ports: toPorts(r.ports ?? []),
    subjectAltNames: r.subjectAltNames ?? [],
    ipFamilies: r.ipFamilies ?? 'AUTOMATIC',
    canonical: r.canonical ?? true,
    ingressUseWaypoint: false,
    weightedWaypoints: r.weightedWaypoints ?? [],
    visibility: r.visibility ?? 'PUBLIC',
  };
  if (r.waypoint) s.waypoint = r.waypoint;
  if (r.loadBalancer) s.loadBalancing = r.loadBalancer;
  return s;
};

/**
 * One `policies[]` entry, through @mesh/l4-rbac's reader of ztunnel's policy form (`!Exact x`
 * tags or `{Exact: x}` maps, `dryRun` required); its first problem in the entry is reported.
 */
const readPolicy: Reader<Authorization> = (p, path, v) => {
  try {
    return policyFromLocalConfig(v, path).policy;
  } catch (err) {
    const message = (err as Error).message;
    return p.add('', message.startsWith(path) ? message : `${path}: ${message}`);
  }
};
