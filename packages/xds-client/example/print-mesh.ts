// Connects a DeltaAdsClient to an in-process fake control plane and prints what it learns.
// Run: node --conditions=@mesh/source --import tsx packages/xds-client/example/print-mesh.ts
import { addressType, authorizationType, DeltaAdsClient } from '@mesh/xds-client';
import { FakeControlPlane } from '@mesh/xds-client/testing';

const cp = await FakeControlPlane.start();
cp.set(addressType, {
  kind: 'service',
  service: {
    name: 'api',
    namespace: 'shop',
    hostname: 'api.shop.svc.cluster.local',
    addresses: [{ network: '', address: '10.96.0.20' }],
    ports: [{ servicePort: 80, targetPort: 8080, appProtocol: 'HTTP2' }],
    subjectAltNames: [],
    ipFamilies: 'IPV4_ONLY',
    canonical: true,
    ingressUseWaypoint: false,
    weightedWaypoints: [],
    visibility: 'PUBLIC',
  },
});
cp.set(addressType, {
  kind: 'workload',
  workload: {
    uid: 'c1//v1/Pod/shop/api-0',
    name: 'api-0',
    namespace: 'shop',
    addresses: ['10.1.0.5'],
    hostname: '',
    network: '',
    tunnelProtocol: 'HBONE',
    trustDomain: 'cluster.local',
    serviceAccount: 'api',
    node: 'node-a',
    canonicalName: 'api',
    canonicalRevision: 'v1',
    workloadType: 'POD',
    workloadName: 'api',
    nativeTunnel: false,
    authorizationPolicies: [],
    status: 'HEALTHY',
    clusterId: 'Kubernetes',
    services: {
      'shop/api.shop.svc.cluster.local': [
        { servicePort: 80, targetPort: 8080, appProtocol: 'HTTP2' },
      ],
    },
    networkMode: 'STANDARD',
    capacity: 1,
  },
});
cp.set(authorizationType, {
  name: 'only-shop',
  namespace: 'shop',
  scope: 'NAMESPACE',
  action: 'ALLOW',
  dryRun: false,
  rules: [{ clauses: [{ matches: [] }] }],
});

const client = new DeltaAdsClient({
  address: cp.address, // http://127.0.0.1:<port>; use https://istiod...:15012 with rootCa in real life
  node: { podName: 'ztunnel-x1', podNamespace: 'istio-system', instanceIp: '10.0.0.9' },
});
client.on('nack', (n) => console.log(`NACK ${n.typeUrl}: ${n.message}`));
client.start();
await client.ready();

for (const { name, value } of client.snapshot(addressType).values()) {
  if (value.kind === 'workload') {
    const w = value.workload;
    console.log(
      `workload ${name}: ${w.addresses.join(',')} sa=${w.serviceAccount} ${w.tunnelProtocol}`,
    );
  } else {
    const s = value.service;
    console.log(
      `service ${name}: ${s.addresses.map((a) => a.address).join(',')} ports=${s.ports.map((p) => `${p.servicePort}->${p.targetPort}`).join(',')}`,
    );
  }
}
for (const { name, value } of client.snapshot(authorizationType).values()) {
  console.log(`policy ${name}: ${value.action} scope=${value.scope} rules=${value.rules.length}`);
}

// Changes arrive as ordered batches; the first batch per type is what is already held.
const changes = client.watch({ types: [addressType.typeUrl] });
await changes.next();
cp.remove(addressType, ['c1//v1/Pod/shop/api-0']);
const { value: change } = await changes.next();
console.log(`removed: ${change?.removed.map((r) => r.name).join(',')}`);
console.log('counters', JSON.stringify(client.counters().messages));

await client.close();
await cp.close();
