// The mesh the built-in fake control plane serves, and the changes it plays, so the example
// shows every kind of change without a cluster.

import { type Authorization, emptyMatch } from '@mesh/l4-rbac';
import {
  type Address,
  addressType,
  authorizationType,
  type Service,
  type Workload,
} from '@mesh/xds-client';
import type { FakeControlPlane } from '@mesh/xds-client/testing';

export function workload(
  w: Pick<Workload, 'name' | 'namespace' | 'addresses' | 'serviceAccount'> & Partial<Workload>,
): Address {
  return {
    kind: 'workload',
    workload: {
      uid: `Kubernetes//Pod/${w.namespace}/${w.name}`,
      hostname: '',
      network: '',
      tunnelProtocol: 'HBONE',
      trustDomain: 'cluster.local',
      node: 'node-a',
      canonicalName: w.name.replace(/-[^-]+$/, ''),
      canonicalRevision: 'v1',
      workloadType: 'POD',
      workloadName: w.name.replace(/-[^-]+$/, ''),
      nativeTunnel: false,
      authorizationPolicies: [],
      status: 'HEALTHY',
      clusterId: 'Kubernetes',
      services: {},
      networkMode: 'STANDARD',
      capacity: 1,
      ...w,
    },
  };
}

export function service(s: Pick<Service, 'name' | 'namespace' | 'addresses' | 'ports'>): Address {
  return {
    kind: 'service',
    service: {
      hostname: `${s.name}.${s.namespace}.svc.cluster.local`,
      subjectAltNames: [],
      ipFamilies: 'IPV4_ONLY',
      canonical: true,
      ingressUseWaypoint: false,
      weightedWaypoints: [],
      visibility: 'PUBLIC',
      ...s,
    },
  };
}

const apiPorts = [{ servicePort: 80, targetPort: 8080, appProtocol: 'HTTP11' as const }];

export const initialAddresses: Address[] = [
  service({
    name: 'api',
    namespace: 'shop',
    addresses: [{ network: '', address: '10.96.0.20' }],
    ports: apiPorts,
  }),
  workload({
    name: 'api-7f9c',
    namespace: 'shop',
    addresses: ['10.1.0.5'],
    serviceAccount: 'api',
    services: { 'shop/api.shop.svc.cluster.local': apiPorts },
    authorizationPolicies: ['shop/api-allow-frontend'],
  }),
  workload({
    name: 'frontend-5d2a',
    namespace: 'shop',
    addresses: ['10.1.0.7'],
    serviceAccount: 'frontend',
  }),
];

const allowFrontend: Authorization = {
  name: 'api-allow-frontend',
  namespace: 'shop',
  scope: 'WORKLOAD_SELECTOR',
  action: 'ALLOW',
  dryRun: false,
  rules: [
    {
      clauses: [
        {
          matches: [
            {
              ...emptyMatch(),
              principals: [{ kind: 'exact', value: 'cluster.local/ns/shop/sa/frontend' }],
            },
          ],
        },
      ],
    },
  ],
};

export const initialPolicies: Authorization[] = [allowFrontend];

/** Each step changes the fake control plane once; the client sees one change per step. */
export const story: { title: string; apply(cp: FakeControlPlane): void }[] = [
  {
    title: 'a second api replica starts',
    apply: (cp) =>
      cp.set(
        addressType,
        workload({
          name: 'api-2b81',
          namespace: 'shop',
          addresses: ['10.1.0.6'],
          serviceAccount: 'api',
          services: { 'shop/api.shop.svc.cluster.local': apiPorts },
          authorizationPolicies: ['shop/api-allow-frontend'],
        }),
      ),
  },
  {
    title: 'the policy is switched to dry-run',
    apply: (cp) => cp.set(authorizationType, { ...allowFrontend, dryRun: true }),
  },
  {
    title: 'the first replica goes away',
    apply: (cp) => cp.remove(addressType, ['Kubernetes//Pod/shop/api-7f9c']),
  },
];
