import { type Address, addressType, DeltaAdsClient } from '@mesh/xds-client';
import { FakeControlPlane } from '@mesh/xds-client/testing';

// A real gRPC server on a free loopback port speaking delta ADS, for tests and demos.
const cp = await FakeControlPlane.start();
const workload = (name: string, ip: string): Address => ({
  kind: 'workload',
  workload: {
    uid: `Kubernetes//Pod/shop/${name}`,
    name,
    namespace: 'shop',
    addresses: [ip],
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
    services: {},
    networkMode: 'STANDARD',
    capacity: 1,
  },
});
cp.set(addressType, workload('api-0', '10.1.0.5'));

const client = new DeltaAdsClient({
  address: cp.address, // 'https://istiod.istio-system.svc:15012' with rootCa and token in a cluster
  node: { podName: 'ztunnel-abc', podNamespace: 'istio-system', instanceIp: '10.0.0.9' },
});
client.start();
await client.ready(); // the first response of every subscribed type was ACKed
console.log('held:', [...client.snapshot(addressType).keys()]);

// Lookups by name or by alias `network/IP`.
const held = client.get(addressType, '/10.1.0.5');
console.log('by IP:', held?.value.kind === 'workload' ? held.value.workload.name : undefined);

// Changes arrive in order: first what is held, then every update.
const changes = client.watch({ types: [addressType.typeUrl] });
await changes.next(); // the snapshot, as one `added` batch
cp.set(addressType, workload('api-1', '10.1.0.6'));
const { value: change } = await changes.next();
console.log(
  'added:',
  change?.added.map((r) => r.name),
);
console.log('counters:', client.counters().acks);

await client.close();
await cp.close();
