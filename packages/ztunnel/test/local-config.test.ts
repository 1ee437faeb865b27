import { describe, expect, it } from 'vitest';
import { parseLocalConfig, ZtunnelError } from '../src/index.js';

const example = `
workloads:
- uid: c1//v1/Pod/shop/api-0
  name: api-0
  namespace: shop
  serviceAccount: api
  trustDomain: cluster.local
  workloadIps: ["10.1.0.5"]
  protocol: HBONE
  node: node-a
  services:
    "shop/api.shop.svc.cluster.local":
      80: 8080
- name: legacy-0
  namespace: shop
  workloadIps: ["10.1.0.6"]
  waypoint: { destination: "/10.1.0.9", hboneMtlsPort: 15008 }
services:
- name: api
  namespace: shop
  hostname: api.shop.svc.cluster.local
  vips: ["/10.96.0.20"]
  ports: {80: 8080}
  loadBalancer: { routingPreferences: [Node, Zone], mode: Failover }
policies:
- name: only-shop
  namespace: shop
  scope: Namespace
  action: Allow
  dryRun: false
  rules:
  - - - namespaces: [!Exact shop]
        principals: [{Prefix: "cluster.local/ns/shop/"}, !Presence ]
    - - destinationPorts: [8080]
        sourceIps: ["10.0.0.0/8", "fd00::1"]
`;

describe('parseLocalConfig', () => {
  it('decodes the spec example into the shared xDS and policy shapes', () => {
    const c = parseLocalConfig(example);
    expect(c.workloads).toHaveLength(2);
    const [api, legacy] = c.workloads;
    expect(api).toMatchObject({
      uid: 'c1//v1/Pod/shop/api-0',
      addresses: ['10.1.0.5'],
      tunnelProtocol: 'HBONE',
      trustDomain: 'cluster.local',
      capacity: 1,
      status: 'HEALTHY',
      services: {
        'shop/api.shop.svc.cluster.local': [
          { servicePort: 80, targetPort: 8080, appProtocol: 'UNKNOWN' },
        ],
      },
    });
    // No xDS defaults in file mode.
    expect(legacy).toMatchObject({
      trustDomain: '',
      serviceAccount: '',
      clusterId: '',
      tunnelProtocol: 'NONE',
    });
    expect(legacy?.waypoint).toEqual({
      destination: { kind: 'address', network: '', address: '10.1.0.9' },
      hboneMtlsPort: 15008,
    });
    expect(c.services[0]).toMatchObject({
      addresses: [{ network: '', address: '10.96.0.20' }],
      ports: [{ servicePort: 80, targetPort: 8080 }],
      loadBalancing: {
        routingPreference: ['NODE', 'ZONE'],
        mode: 'FAILOVER',
        healthPolicy: 'ONLY_HEALTHY',
      },
    });
    const [policy] = c.policies;
    expect(policy).toMatchObject({ scope: 'NAMESPACE', action: 'ALLOW', dryRun: false });
    expect(policy?.rules).toHaveLength(1);
    expect(policy?.rules[0]?.clauses).toHaveLength(2);
    const m = policy!.rules[0]!.clauses[0]!.matches[0]!;
    expect(m.namespaces).toEqual([{ kind: 'exact', value: 'shop' }]);
    expect(m.principals).toEqual([
      { kind: 'prefix', value: 'cluster.local/ns/shop/' },
      { kind: 'presence' },
    ]);
    const m2 = policy!.rules[0]!.clauses[1]!.matches[0]!;
    expect(m2.sourceIps).toEqual([
      { address: '10.0.0.0', prefixLength: 8 },
      { address: 'fd00::1', prefixLength: 128 },
    ]);
  });

  it('lists every problem with its path in one error', () => {
    const bad = `
workloads:
- namespace: a
  workloadIps: ["not-an-ip"]
  protocl: HBONE
- workloadIps: []
services:
- name: s
  namespace: a
  hostname: s.a
  vips: ["10.0.0.1"]
policies:
- name: p
  namespace: a
  scope: Namespace
  action: Permit
bogus: 1
`;
    let err: unknown;
    try {
      parseLocalConfig(bad);
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(ZtunnelError);
    const e = err as ZtunnelError;
    expect(e.code).toBe('ERR_ZTUNNEL_LOCAL_CONFIG_INVALID');
    const text = e.problems.join('\n');
    expect(text).toContain('workloads[0].workloadIps[0]: "not-an-ip" is not an IP address');
    expect(text).toContain('workloads[0]: unknown key "protocl"');
    expect(text).toContain('workloads[1]: missing required key "namespace"');
    expect(text).toContain('services[0].vips[0]');
    // Policies are read by @mesh/l4-rbac, which reports the first problem of each entry.
    expect(text).toContain('policies[0].action: must be Allow or Deny, got "Permit"');
    expect(text).toContain('unknown key "bogus"');
  });

  it('reports YAML syntax errors and duplicate keys', () => {
    expect(() => parseLocalConfig('workloads: [')).toThrow(/YAML/);
    expect(() => parseLocalConfig('workloads: []\nworkloads: []')).toThrow(/YAML/);
  });

  it('treats an empty document as an empty config', () => {
    expect(parseLocalConfig('')).toEqual({ workloads: [], services: [], policies: [] });
  });
});
