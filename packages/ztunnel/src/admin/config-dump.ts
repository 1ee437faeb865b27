import { X509Certificate } from 'node:crypto';
import type { Authorization, Match, StringMatch } from '@mesh/l4-rbac';
import type { WorkloadCertificate } from '@mesh/spiffe';
import type { GatewayAddress, Port, Service, Workload } from '@mesh/xds-client';
import type { ZtunnelConfig } from '../config/settings.js';
import { formatBindAddress } from '../config/values.js';
import { type StateStore, serviceKey } from '../state/store.js';

/** The state of one identity's certificate, as `/config_dump` reports it. */
export interface CertificateStatus {
  identity: string;
  /** `Initializing`, `Available` or `Unavailable: <reason>`. */
  state: string;
  certificate?: WorkloadCertificate;
}

const cap = (s: string) => s.charAt(0).toUpperCase() + s.slice(1).toLowerCase();

function gateway(g: GatewayAddress) {
  const d = g.destination;
  return {
    destination:
      d.kind === 'address' ? `${d.network}/${d.address}` : `${d.namespace}/${d.hostname}`,
    hboneMtlsPort: g.hboneMtlsPort,
  };
}

const portMap = (ports: Port[]) =>
  Object.fromEntries(ports.map((p) => [String(p.servicePort), p.targetPort]));

/** A workload in ztunnel's JSON field names and spellings (as in the local config file). */
export function dumpWorkload(w: Workload) {
  return {
    uid: w.uid,
    workloadIps: w.addresses,
    ...(w.waypoint ? { waypoint: gateway(w.waypoint) } : {}),
    ...(w.networkGateway ? { networkGateway: gateway(w.networkGateway) } : {}),
    protocol: w.tunnelProtocol === 'HBONE' ? 'HBONE' : 'TCP',
    networkMode: w.networkMode === 'HOST_NETWORK' ? 'HostNetwork' : 'Standard',
    name: w.name,
    namespace: w.namespace,
    trustDomain: w.trustDomain,
    serviceAccount: w.serviceAccount,
    network: w.network,
    workloadName: w.workloadName,
    workloadType: w.workloadType.toLowerCase(),
    canonicalName: w.canonicalName,
    canonicalRevision: w.canonicalRevision,
    hostname: w.hostname,
    node: w.node,
    nativeTunnel: w.nativeTunnel,
    ...(w.applicationTunnel ? { applicationTunnel: w.applicationTunnel } : {}),
    authorizationPolicies: w.authorizationPolicies,
    status: cap(w.status),
    clusterId: w.clusterId,
    ...(w.locality ? { locality: w.locality } : {}),
    capacity: w.capacity,
    services: Object.fromEntries(
      Object.entries(w.services).map(([k, ports]) => [k, portMap(ports)]),
    ),
  };
}

export function dumpService(s: Service, store: StateStore) {
  const endpoints: Record<string, unknown> = {};
  for (const w of store.endpointsOf(s)) {
    endpoints[w.uid] = {
      workloadUid: w.uid,
      service: serviceKey(s),
      port: portMap(w.services[serviceKey(s)] ?? []),
      status: cap(w.status),
    };
  }
  return {
    name: s.name,
    namespace: s.namespace,
    hostname: s.hostname,
    vips: s.addresses.map(
      (a) => `${a.network}/${a.address}${a.prefixLength !== undefined ? `/${a.prefixLength}` : ''}`,
    ),
    ports: portMap(s.ports),
    endpoints,
    subjectAltNames: s.subjectAltNames,
    ...(s.waypoint ? { waypoint: gateway(s.waypoint) } : {}),
    ...(s.loadBalancing ? { loadBalancer: s.loadBalancing } : {}),
    ipFamilies: s.ipFamilies,
  };
}

const stringMatch = (m: StringMatch) =>
  m.kind === 'presence' ? { Presence: {} } : { [cap(m.kind)]: m.value };
const cidrs = (l: { address: string; prefixLength: number }[]) =>
  l.map((c) => `${c.address}/${c.prefixLength}`);

function dumpMatch(m: Match) {
  return {
    namespaces: m.namespaces.map(stringMatch),
    notNamespaces: m.notNamespaces.map(stringMatch),
    serviceAccounts: m.serviceAccounts,
    notServiceAccounts: m.notServiceAccounts,
    principals: m.principals.map(stringMatch),
    notPrincipals: m.notPrincipals.map(stringMatch),
    sourceIps: cidrs(m.sourceIps),
    notSourceIps: cidrs(m.notSourceIps),
    destinationIps: cidrs(m.destinationIps),
    notDestinationIps: cidrs(m.notDestinationIps),
    destinationPorts: m.destinationPorts,
    notDestinationPorts: m.notDestinationPorts,
  };
}

export function dumpPolicy(p: Authorization) {
  const scope = { GLOBAL: 'Global', NAMESPACE: 'Namespace', WORKLOAD_SELECTOR: 'WorkloadSelector' }[
    p.scope
  ];
  return {
    name: p.name,
    namespace: p.namespace,
    scope,
    action: cap(p.action),
    rules: p.rules.map((r) => r.clauses.map((c) => c.matches.map(dumpMatch))),
    dryRun: p.dryRun,
  };
}

function certEntry(pem: string) {
  const x = new X509Certificate(pem);
  return {
    pem: Buffer.from(pem).toString('base64'),
    serialNumber: x.serialNumber.toLowerCase(),
    validFrom: new Date(x.validFrom).toISOString(),
    expirationTime: new Date(x.validTo).toISOString(),
  };
}

export function dumpCertificate(c: CertificateStatus) {
  const cert = c.certificate;
  return {
    identity: c.identity,
    state: c.state,
    certChain: cert ? [cert.leaf, ...cert.intermediates].map(certEntry) : [],
    rootCerts: cert ? cert.roots.map(certEntry) : [],
  };
}

/** Settings as shown in the dump: listener addresses as text, the token never shown. */
export function dumpConfig(config: ZtunnelConfig) {
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(config)) {
    if (k === 'authToken') out[k] = v === undefined ? undefined : '<redacted>';
    else if (k === 'localXds') out[k] = v === undefined ? undefined : '<inline>';
    else if (typeof v === 'object' && v !== null && 'port' in v && 'host' in v)
      out[k] = formatBindAddress(v as never);
    else out[k] = v;
  }
  return out;
}

/** ztunnel's `/config_dump` JSON: workloads, services, policies, certificates and config. */
export function configDump(
  store: StateStore,
  /** Already in ztunnel's shape (see {@link dumpCertificate}). */
  certificates: readonly unknown[],
  config: ZtunnelConfig,
) {
  return {
    workloads: store.workloads.map(dumpWorkload),
    services: store.services.map((s) => dumpService(s, store)),
    policies: store.policies.map(dumpPolicy),
    certificates,
    config: dumpConfig(config),
  };
}
