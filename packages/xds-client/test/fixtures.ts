import type { Authorization, Match } from '@mesh/l4-rbac';
import { DeltaAdsClient, type DeltaAdsClientOptions } from '../src/index.js';
import type { Address, Service, Workload } from '../src/types.js';

export function workload(n: number, overrides: Partial<Workload> = {}): Address {
  return {
    kind: 'workload',
    workload: {
      uid: `Kubernetes//Pod/default/pod-${n}`,
      name: `pod-${n}`,
      namespace: 'default',
      addresses: [`10.0.${(n >> 8) & 0xff}.${n & 0xff}`],
      hostname: '',
      network: '',
      tunnelProtocol: 'HBONE',
      trustDomain: 'cluster.local',
      serviceAccount: 'default',
      node: 'node-a',
      canonicalName: 'app',
      canonicalRevision: 'v1',
      workloadType: 'POD',
      workloadName: `pod-${n}`,
      nativeTunnel: false,
      authorizationPolicies: [],
      status: 'HEALTHY',
      clusterId: 'Kubernetes',
      services: {
        'default/app.default.svc.cluster.local': [
          { servicePort: 80, targetPort: 8080, appProtocol: 'HTTP11' },
        ],
      },
      networkMode: 'STANDARD',
      capacity: 1,
      ...overrides,
    },
  };
}

export function service(n: number, overrides: Partial<Service> = {}): Address {
  return {
    kind: 'service',
    service: {
      name: `svc-${n}`,
      namespace: 'default',
      hostname: `svc-${n}.default.svc.cluster.local`,
      addresses: [{ network: '', address: `10.96.${(n >> 8) & 0xff}.${n & 0xff}` }],
      ports: [{ servicePort: 80, targetPort: 8080, appProtocol: 'UNKNOWN' }],
      subjectAltNames: [],
      ipFamilies: 'IPV4_ONLY',
      canonical: true,
      ingressUseWaypoint: false,
      weightedWaypoints: [],
      visibility: 'PUBLIC',
      ...overrides,
    },
  };
}

export function emptyMatch(overrides: Partial<Match> = {}): Match {
  return {
    namespaces: [],
    notNamespaces: [],
    principals: [],
    notPrincipals: [],
    sourceIps: [],
    notSourceIps: [],
    destinationIps: [],
    notDestinationIps: [],
    destinationPorts: [],
    notDestinationPorts: [],
    serviceAccounts: [],
    notServiceAccounts: [],
    ...overrides,
  };
}

export function policy(name: string, overrides: Partial<Authorization> = {}): Authorization {
  return {
    name,
    namespace: 'default',
    scope: 'NAMESPACE',
    action: 'ALLOW',
    dryRun: false,
    rules: [
      {
        clauses: [{ matches: [emptyMatch({ namespaces: [{ kind: 'exact', value: 'default' }] })] }],
      },
    ],
    ...overrides,
  };
}

export const node = {
  podName: 'ztunnel-abc',
  podNamespace: 'istio-system',
  instanceIp: '10.1.0.9',
  nodeName: 'node-a',
};

/** A client started against `address`, closed by the returned function. */
export function startClient(
  address: string,
  extra: Partial<DeltaAdsClientOptions> = {},
): DeltaAdsClient {
  return new DeltaAdsClient({ address, node, ...extra }).start();
}

/** A wire enum number outside the enum, for testing rejection of unknown values. */
export const bogus = (n: number) => n as never;
