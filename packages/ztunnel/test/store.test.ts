import { describe, expect, it } from 'vitest';
import { parseLocalConfig } from '../src/index.js';
import { StateStore } from '../src/state/store.js';

const yaml = `
workloads:
- { uid: a, name: a, namespace: ns, serviceAccount: a, workloadIps: ["10.0.0.1"], capacity: 1,
    services: { "ns/svc.ns": { 80: 8080 } }, authorizationPolicies: [ns/sel] }
- { uid: b, name: b, namespace: ns, serviceAccount: b, workloadIps: ["10.0.0.2"], capacity: 3,
    services: { "ns/svc.ns": { 80: 9090 } } }
- { uid: c, name: c, namespace: ns, workloadIps: ["10.0.0.3"], status: Unhealthy,
    services: { "ns/svc.ns": { 80: 0 } } }
- { uid: h, name: h, namespace: ns, workloadIps: ["10.0.0.9"], networkMode: HostNetwork }
- { uid: w, name: waypoint, namespace: ns, workloadIps: ["10.0.0.50"], protocol: HBONE }
services:
- { name: svc, namespace: ns, hostname: svc.ns, vips: ["/10.96.0.1"], ports: { 80: 7070 },
    waypoint: { destination: "/10.0.0.50", hboneMtlsPort: 15008 } }
- { name: other, namespace: other, hostname: svc.ns, vips: ["net1/10.96.0.1"], cidrVips: ["/10.97.0.0/16"] }
policies:
- { name: ns-wide, namespace: ns, scope: Namespace, action: Allow, dryRun: false }
- { name: global, namespace: istio-system, scope: Global, action: Deny, dryRun: false }
- { name: sel, namespace: ns, scope: WorkloadSelector, action: Deny, dryRun: false }
- { name: elsewhere, namespace: other, scope: Namespace, action: Deny, dryRun: false }
`;

function store() {
  const s = new StateStore();
  s.replaceLocal(parseLocalConfig(yaml));
  return s;
}

describe('StateStore', () => {
  it('indexes workloads by network and IP, and skips host-network workloads', () => {
    const s = store();
    expect(s.workloadByIp('', '10.0.0.2')?.uid).toBe('b');
    expect(s.workloadByIp('', '::ffff:10.0.0.2')?.uid).toBe('b');
    expect(s.workloadByIp('net1', '10.0.0.2')).toBeUndefined();
    expect(s.workloadByIp('', '10.0.0.9')).toBeUndefined();
    expect(s.workloadByUid('h')?.name).toBe('h');
  });

  it('finds services by VIP (per network, with CIDR VIPs) and by hostname preferring a namespace', () => {
    const s = store();
    expect(s.serviceByVip('', '10.96.0.1')?.namespace).toBe('ns');
    expect(s.serviceByVip('net1', '10.96.0.1')?.namespace).toBe('other');
    expect(s.serviceByVip('', '10.97.3.4')?.namespace).toBe('other');
    expect(s.serviceByVip('', '10.98.0.1')).toBeUndefined();
    expect(s.serviceByHostname('svc.ns', 'other')?.namespace).toBe('other');
    expect(s.serviceByHostname('svc.ns', 'ns')?.namespace).toBe('ns');
  });

  it('maps service ports with the endpoint map first, then the service', () => {
    const s = store();
    const svc = s.serviceByVip('', '10.96.0.1')!;
    expect(s.targetPort(svc, s.workloadByUid('a')!, 80)).toBe(8080);
    expect(s.targetPort(svc, s.workloadByUid('c')!, 80)).toBe(7070);
    expect(s.targetPort(svc, s.workloadByUid('a')!, 81)).toBeUndefined();
  });

  it('balances over healthy endpoints weighted by capacity', () => {
    const s = store();
    const svc = s.serviceByVip('', '10.96.0.1')!;
    const counts: Record<string, number> = {};
    for (let i = 0; i < 400; i++) {
      const ep = s.pickEndpoint(svc, 80, () => i / 400)!;
      counts[ep.workload.uid] = (counts[ep.workload.uid] ?? 0) + 1;
    }
    expect(counts).toEqual({ a: 100, b: 300 });
    expect(s.pickEndpoint(svc, 443)).toBeUndefined();
  });

  it('selects namespace, global and listed selector policies for a workload', () => {
    const s = store();
    const names = (uid: string) =>
      s
        .policiesFor(s.workloadByUid(uid)!)
        .map((p) => p.name)
        .sort();
    expect(names('a')).toEqual(['global', 'ns-wide', 'sel']);
    expect(names('b')).toEqual(['global', 'ns-wide']);
  });

  it('resolves waypoints to their workload', () => {
    const s = store();
    const svc = s.serviceByVip('', '10.96.0.1')!;
    expect(s.resolveGateway(svc.waypoint!)?.workload.name).toBe('waypoint');
  });

  it('merges xDS over the local file and emits change events', () => {
    const s = store();
    let addresses = 0;
    let policies = 0;
    s.on('addresses', () => addresses++);
    s.on('policies', () => policies++);
    const a = s.workloadByUid('a')!;
    s.upsertAddress({ kind: 'workload', workload: { ...a, addresses: ['10.0.1.1'] } });
    expect(s.workloadByIp('', '10.0.1.1')?.uid).toBe('a');
    expect(s.workloadByIp('', '10.0.0.1')).toBeUndefined();
    s.removeAddress('a');
    expect(s.workloadByIp('', '10.0.0.1')?.uid).toBe('a');
    s.removePolicy('ns/ns-wide', 'local');
    expect(s.policies.map((p) => p.name)).not.toContain('ns-wide');
    expect(addresses).toBe(2);
    expect(policies).toBe(1);
  });
});
