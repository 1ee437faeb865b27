import { istio } from './gen/proto.js';
import { ipFromBytes, ipToBytes, maxPrefix } from './ip.js';
import { type DecodeResult, enumName, Problems, type XdsResourceType } from './resource-type.js';
import type {
  Address,
  AppProtocol,
  GatewayAddress,
  HealthPolicy,
  IpFamilies,
  LoadBalancing,
  LoadBalancingMode,
  LoadBalancingScope,
  NetworkMode,
  Port,
  Service,
  ServiceAddress,
  TunnelProtocol,
  Workload,
  WorkloadStatus,
  WorkloadType,
} from './types.js';

const pb = istio.workload;

export const ADDRESS_TYPE_URL = 'type.googleapis.com/istio.workload.Address';

const APP_PROTOCOLS: readonly AppProtocol[] = ['UNKNOWN', 'HTTP11', 'HTTP2', 'GRPC', 'TCP', 'TLS'];
const WORKLOAD_STATUS: readonly WorkloadStatus[] = ['HEALTHY', 'UNHEALTHY'];
const WORKLOAD_TYPES: readonly WorkloadType[] = ['DEPLOYMENT', 'CRONJOB', 'POD', 'JOB'];
const NETWORK_MODES: readonly NetworkMode[] = ['STANDARD', 'HOST_NETWORK'];
const IP_FAMILIES: readonly IpFamilies[] = ['AUTOMATIC', 'IPV4_ONLY', 'IPV6_ONLY', 'DUAL'];
const LB_SCOPES = [
  'UNSPECIFIED_SCOPE',
  'REGION',
  'ZONE',
  'SUBZONE',
  'NODE',
  'CLUSTER',
  'NETWORK',
] as const;
const LB_MODES: readonly LoadBalancingMode[] = [
  'UNSPECIFIED_MODE',
  'STRICT',
  'FAILOVER',
  'PASSTHROUGH',
];
const HEALTH_POLICIES: readonly HealthPolicy[] = ['ONLY_HEALTHY', 'ALLOW_ALL'];
const VISIBILITY = ['PUBLIC', 'NAMESPACE'] as const;
const APP_TUNNEL = ['NONE', 'PROXY'] as const;

function port16(value: number | null | undefined, path: string, problems: Problems): number {
  const v = value ?? 0;
  if (v > 65535) problems.add(path, `port ${v} is out of range`);
  return v;
}

function ip(bytes: Uint8Array | null | undefined, path: string, problems: Problems): string {
  const b = bytes ?? new Uint8Array();
  const text = ipFromBytes(b);
  if (text === undefined) {
    problems.add(path, `IP address of ${b.length} bytes (want 4 or 16)`);
    return '';
  }
  return text;
}

function decodePort(p: istio.workload.Port.$Properties, path: string, problems: Problems): Port {
  return {
    servicePort: port16(p.servicePort, `${path}.service_port`, problems),
    targetPort: port16(p.targetPort, `${path}.target_port`, problems),
    appProtocol: enumName(
      APP_PROTOCOLS,
      p.appProtocol,
      'AppProtocol',
      `${path}.app_protocol`,
      problems,
    ),
  };
}

function decodeGateway(
  g: istio.workload.GatewayAddress.$Properties,
  path: string,
  problems: Problems,
): GatewayAddress {
  const hboneMtlsPort = port16(g.hboneMtlsPort, `${path}.hbone_mtls_port`, problems);
  if (g.address) {
    const address = ip(g.address.address, `${path}.address.address`, problems);
    return {
      destination: { kind: 'address', network: g.address.network ?? '', address },
      hboneMtlsPort,
    };
  }
  if (g.hostname) {
    return {
      destination: {
        kind: 'hostname',
        namespace: g.hostname.namespace ?? '',
        hostname: g.hostname.hostname ?? '',
      },
      hboneMtlsPort,
    };
  }
  problems.add(path, 'gateway address has no destination');
  return { destination: { kind: 'hostname', namespace: '', hostname: '' }, hboneMtlsPort };
}

function decodeWorkload(w: istio.workload.Workload.$Properties, problems: Problems): Workload {
  const path = 'workload';
  let tunnelProtocol: TunnelProtocol = 'NONE';
  const tp = w.tunnelProtocol ?? 0;
  if (tp === 1) tunnelProtocol = 'HBONE';
  else if (tp === 2) problems.add(`${path}.tunnel_protocol`, 'LEGACY_ISTIO_MTLS is not supported');
  else if (tp !== 0) problems.add(`${path}.tunnel_protocol`, `unknown TunnelProtocol value ${tp}`);

  const services: Record<string, Port[]> = {};
  for (const [key, list] of Object.entries(w.services ?? {})) {
    services[key] = (list.ports ?? []).map((p, i) =>
      decodePort(p, `${path}.services[${JSON.stringify(key)}].ports[${i}]`, problems),
    );
  }
  const workload: Workload = {
    uid: w.uid ?? '',
    name: w.name ?? '',
    namespace: w.namespace ?? '',
    addresses: (w.addresses ?? []).map((a, i) => ip(a, `${path}.addresses[${i}]`, problems)),
    hostname: w.hostname ?? '',
    network: w.network ?? '',
    tunnelProtocol,
    trustDomain: w.trustDomain || 'cluster.local',
    serviceAccount: w.serviceAccount || 'default',
    node: w.node ?? '',
    canonicalName: w.canonicalName ?? '',
    canonicalRevision: w.canonicalRevision ?? '',
    workloadType: enumName(
      WORKLOAD_TYPES,
      w.workloadType,
      'WorkloadType',
      `${path}.workload_type`,
      problems,
    ),
    workloadName: w.workloadName ?? '',
    nativeTunnel: w.nativeTunnel ?? false,
    authorizationPolicies: w.authorizationPolicies ?? [],
    status: enumName(WORKLOAD_STATUS, w.status, 'WorkloadStatus', `${path}.status`, problems),
    clusterId: w.clusterId || 'Kubernetes',
    services,
    networkMode: enumName(
      NETWORK_MODES,
      w.networkMode,
      'NetworkMode',
      `${path}.network_mode`,
      problems,
    ),
    capacity: w.capacity ? (w.capacity.value ?? 0) : 1,
  };
  if (w.waypoint) workload.waypoint = decodeGateway(w.waypoint, `${path}.waypoint`, problems);
  if (w.networkGateway) {
    workload.networkGateway = decodeGateway(w.networkGateway, `${path}.network_gateway`, problems);
  }
  if (w.applicationTunnel) {
    const t = w.applicationTunnel;
    workload.applicationTunnel = {
      protocol: enumName(
        APP_TUNNEL,
        t.protocol,
        'ApplicationTunnel.Protocol',
        `${path}.application_tunnel.protocol`,
        problems,
      ),
    };
    const port = port16(t.port, `${path}.application_tunnel.port`, problems);
    if (port !== 0) workload.applicationTunnel.port = port;
  }
  if (w.locality) {
    workload.locality = {
      region: w.locality.region ?? '',
      zone: w.locality.zone ?? '',
      subzone: w.locality.subzone ?? '',
    };
  }
  return workload;
}

function decodeLoadBalancing(
  lb: istio.workload.LoadBalancing.$Properties,
  problems: Problems,
): LoadBalancing {
  const path = 'service.load_balancing';
  const routingPreference: LoadBalancingScope[] = [];
  (lb.routingPreference ?? []).forEach((s, i) => {
    const name = enumName(
      LB_SCOPES,
      s,
      'LoadBalancing.Scope',
      `${path}.routing_preference[${i}]`,
      problems,
    );
    if (name === 'UNSPECIFIED_SCOPE') {
      if (s === 0)
        problems.add(`${path}.routing_preference[${i}]`, 'UNSPECIFIED_SCOPE is not a scope');
    } else routingPreference.push(name);
  });
  return {
    routingPreference,
    mode: enumName(LB_MODES, lb.mode, 'LoadBalancing.Mode', `${path}.mode`, problems),
    healthPolicy: enumName(
      HEALTH_POLICIES,
      lb.healthPolicy,
      'LoadBalancing.HealthPolicy',
      `${path}.health_policy`,
      problems,
    ),
  };
}

function decodeService(s: istio.workload.Service.$Properties, problems: Problems): Service {
  const path = 'service';
  const addresses: ServiceAddress[] = (s.addresses ?? []).map((a, i) => {
    const p = `${path}.addresses[${i}]`;
    const address = ip(a.address, `${p}.address`, problems);
    const out: ServiceAddress = { network: a.network ?? '', address };
    if (a.length !== undefined && a.length !== null) {
      if (address && a.length > maxPrefix(a.address!)) {
        problems.add(`${p}.length`, `prefix length ${a.length} is too long for ${address}`);
      }
      out.prefixLength = a.length;
    }
    return out;
  });
  const service: Service = {
    name: s.name ?? '',
    namespace: s.namespace ?? '',
    hostname: s.hostname ?? '',
    addresses,
    ports: (s.ports ?? []).map((p, i) => decodePort(p, `${path}.ports[${i}]`, problems)),
    subjectAltNames: s.subjectAltNames ?? [],
    ipFamilies: enumName(IP_FAMILIES, s.ipFamilies, 'IPFamilies', `${path}.ip_families`, problems),
    canonical: s.canonical ?? false,
    ingressUseWaypoint: s.ingressUseWaypoint ?? false,
    weightedWaypoints: (s.weightedWaypoints ?? []).map((w, i) => {
      const p = `${path}.weighted_waypoints[${i}]`;
      if (!w.destination) problems.add(p, 'weighted waypoint has no destination');
      return {
        destination: decodeGateway(w.destination ?? {}, `${p}.destination`, problems),
        weight: w.weight ?? 0,
      };
    }),
    visibility: enumName(
      VISIBILITY,
      s.visibility,
      'Service.Visibility',
      `${path}.visibility`,
      problems,
    ),
  };
  if (s.waypoint) service.waypoint = decodeGateway(s.waypoint, `${path}.waypoint`, problems);
  if (s.loadBalancing) service.loadBalancing = decodeLoadBalancing(s.loadBalancing, problems);
  return service;
}

/** Decode and validate the bytes of one `istio.workload.Address`. Never throws. */
export function decodeAddress(bytes: Uint8Array): DecodeResult<Address> {
  let msg: istio.workload.Address;
  try {
    msg = pb.Address.decode(bytes);
  } catch (err) {
    return {
      valid: false,
      errors: [`not a valid istio.workload.Address: ${(err as Error).message}`],
    };
  }
  const problems = new Problems();
  let value: Address | undefined;
  if (msg.workload) value = { kind: 'workload', workload: decodeWorkload(msg.workload, problems) };
  else if (msg.service) value = { kind: 'service', service: decodeService(msg.service, problems) };
  else problems.add('', 'address has neither a workload nor a service');
  if (problems.list.length > 0 || !value) return { valid: false, errors: problems.list };
  return { valid: true, value };
}

const APP_PROTOCOL_NUM = Object.fromEntries(APP_PROTOCOLS.map((n, i) => [n, i]));

function encodePort(p: Port): istio.workload.Port.$Properties {
  return {
    servicePort: p.servicePort,
    targetPort: p.targetPort,
    appProtocol: APP_PROTOCOL_NUM[p.appProtocol]!,
  };
}

function encodeGateway(g: GatewayAddress): istio.workload.GatewayAddress.$Properties {
  const d = g.destination;
  return d.kind === 'address'
    ? {
        address: { network: d.network, address: ipToBytes(d.address) },
        hboneMtlsPort: g.hboneMtlsPort,
      }
    : {
        hostname: { namespace: d.namespace, hostname: d.hostname },
        hboneMtlsPort: g.hboneMtlsPort,
      };
}

/** Encode a plain {@link Address} to protobuf bytes (for fake control planes, tests, benches). */
export function encodeAddress(value: Address): Uint8Array {
  if (value.kind === 'workload') {
    const w = value.workload;
    const services: Record<string, istio.workload.PortList.$Properties> = {};
    for (const [k, ports] of Object.entries(w.services))
      services[k] = { ports: ports.map(encodePort) };
    return pb.Address.encode({
      workload: {
        uid: w.uid,
        name: w.name,
        namespace: w.namespace,
        addresses: w.addresses.map(ipToBytes),
        hostname: w.hostname,
        network: w.network,
        tunnelProtocol: w.tunnelProtocol === 'HBONE' ? 1 : 0,
        trustDomain: w.trustDomain,
        serviceAccount: w.serviceAccount,
        waypoint: w.waypoint ? encodeGateway(w.waypoint) : null,
        networkGateway: w.networkGateway ? encodeGateway(w.networkGateway) : null,
        node: w.node,
        canonicalName: w.canonicalName,
        canonicalRevision: w.canonicalRevision,
        workloadType: WORKLOAD_TYPES.indexOf(w.workloadType),
        workloadName: w.workloadName,
        nativeTunnel: w.nativeTunnel,
        authorizationPolicies: w.authorizationPolicies,
        status: WORKLOAD_STATUS.indexOf(w.status),
        clusterId: w.clusterId,
        services,
        applicationTunnel: w.applicationTunnel
          ? {
              protocol: APP_TUNNEL.indexOf(w.applicationTunnel.protocol),
              port: w.applicationTunnel.port ?? 0,
            }
          : null,
        locality: w.locality ?? null,
        networkMode: NETWORK_MODES.indexOf(w.networkMode),
        capacity: w.capacity === 1 ? null : { value: w.capacity },
      },
    }).finish();
  }
  const s = value.service;
  return pb.Address.encode({
    service: {
      name: s.name,
      namespace: s.namespace,
      hostname: s.hostname,
      addresses: s.addresses.map((a) => ({
        network: a.network,
        address: ipToBytes(a.address),
        ...(a.prefixLength === undefined ? {} : { length: a.prefixLength }),
      })),
      ports: s.ports.map(encodePort),
      subjectAltNames: s.subjectAltNames,
      waypoint: s.waypoint ? encodeGateway(s.waypoint) : null,
      loadBalancing: s.loadBalancing
        ? {
            routingPreference: s.loadBalancing.routingPreference.map((x) => LB_SCOPES.indexOf(x)),
            mode: LB_MODES.indexOf(s.loadBalancing.mode),
            healthPolicy: HEALTH_POLICIES.indexOf(s.loadBalancing.healthPolicy),
          }
        : null,
      ipFamilies: IP_FAMILIES.indexOf(s.ipFamilies),
      canonical: s.canonical,
      ingressUseWaypoint: s.ingressUseWaypoint,
      weightedWaypoints: s.weightedWaypoints.map((w) => ({
        destination: encodeGateway(w.destination),
        weight: w.weight,
      })),
      visibility: VISIBILITY.indexOf(s.visibility),
    },
  }).finish();
}

/** Resource name istiod uses: the workload uid, or `namespace/hostname` for a service. */
export function addressName(value: Address): string {
  return value.kind === 'workload'
    ? value.workload.uid
    : `${value.service.namespace}/${value.service.hostname}`;
}

/** On-demand aliases: `network/IP` for each workload address or service VIP. */
export function addressAliases(value: Address): string[] {
  return value.kind === 'workload'
    ? value.workload.addresses.map((a) => `${value.workload.network}/${a}`)
    : value.service.addresses.map((a) => `${a.network}/${a.address}`);
}

/** `type.googleapis.com/istio.workload.Address`: workloads and services. */
export const addressType: XdsResourceType<Address> = {
  typeUrl: ADDRESS_TYPE_URL,
  decode: decodeAddress,
  encode: encodeAddress,
  name: addressName,
  aliases: addressAliases,
};
