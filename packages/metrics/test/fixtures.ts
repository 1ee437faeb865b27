import type { Service, Workload } from '@mesh/xds-client';

/** A full `@mesh/xds-client` Workload, so the tests also prove the types are assignable. */
export function workload(overrides: Partial<Workload> = {}): Workload {
  return {
    uid: 'Kubernetes//Pod/default/sleep-6c7f-abcde',
    name: 'sleep-6c7f-abcde',
    namespace: 'default',
    addresses: ['10.0.0.1'],
    hostname: '',
    network: '',
    tunnelProtocol: 'HBONE',
    trustDomain: 'cluster.local',
    serviceAccount: 'sleep',
    node: 'node-a',
    canonicalName: 'sleep',
    canonicalRevision: 'v1',
    workloadType: 'DEPLOYMENT',
    workloadName: 'sleep',
    nativeTunnel: false,
    authorizationPolicies: [],
    status: 'HEALTHY',
    clusterId: 'Kubernetes',
    services: {},
    networkMode: 'STANDARD',
    capacity: 1,
    ...overrides,
  };
}

export const sleep = workload();

export const echo = workload({
  uid: 'Kubernetes//Pod/echo/echo-v2-xyz',
  name: 'echo-v2-xyz',
  namespace: 'echo',
  addresses: ['10.0.0.2'],
  serviceAccount: 'echo-sa',
  canonicalName: 'echo',
  canonicalRevision: 'v2',
  workloadName: 'echo-v2',
  clusterId: 'east',
  locality: { region: 'eu-west1', zone: 'eu-west1-b', subzone: '' },
  services: {
    'echo/echo.echo.svc.cluster.local': [{ servicePort: 80, targetPort: 8080, appProtocol: 'TCP' }],
    'echo/named.echo.svc.cluster.local': [
      { servicePort: 9000, targetPort: 9999, appProtocol: 'TCP' },
    ],
  },
});

export function service(overrides: Partial<Service> = {}): Service {
  return {
    name: 'echo',
    namespace: 'echo',
    hostname: 'echo.echo.svc.cluster.local',
    addresses: [{ network: '', address: '10.96.0.10' }],
    ports: [{ servicePort: 80, targetPort: 8080, appProtocol: 'TCP' }],
    subjectAltNames: [],
    ipFamilies: 'IPV4_ONLY',
    canonical: true,
    ingressUseWaypoint: false,
    weightedWaypoints: [],
    visibility: 'PUBLIC',
    ...overrides,
  };
}

export const echoService = service();
/** Target port 0: the port comes from the endpoint's own map (9000 -> 9999 on echo). */
export const namedPortService = service({
  name: 'named',
  hostname: 'named.echo.svc.cluster.local',
  ports: [{ servicePort: 9000, targetPort: 0, appProtocol: 'TCP' }],
});
export const otherService = service({
  name: 'other',
  hostname: 'other.echo.svc.cluster.local',
  ports: [{ servicePort: 81, targetPort: 7070, appProtocol: 'TCP' }],
});
