// xds-watch: connect to a control plane and print workloads, services and policies as they
// change.
//
//   pnpm --filter @mesh/example-xds-watch start                   built-in fake control plane
//   pnpm --filter @mesh/example-xds-watch start -- --address https://istiod.istio-system.svc:15012 \
//       --root-ca ./root-cert.pem --token-file ./istio-token      a real istiod
import { parseArgs } from 'node:util';
import { addressType, authorizationType, DeltaAdsClient } from '@mesh/xds-client';
import { FakeControlPlane } from '@mesh/xds-client/testing';
import { formatChange } from './format.js';
import { initialAddresses, initialPolicies, story } from './sample-mesh.js';

const { values: args } = parseArgs({
  options: {
    address: { type: 'string' },
    'root-ca': { type: 'string' },
    'token-file': { type: 'string' },
    'cluster-id': { type: 'string', default: 'Kubernetes' },
    'pod-name': { type: 'string', default: 'xds-watch' },
    'pod-namespace': { type: 'string', default: 'istio-system' },
    'instance-ip': { type: 'string', default: '127.0.0.1' },
    once: { type: 'boolean', default: false },
    help: { type: 'boolean', short: 'h', default: false },
  },
});
if (args.help) {
  console.log(`usage: xds-watch [--address URL [--root-ca FILE|SYSTEM] [--token-file FILE]] [--once]
  without --address: start a fake control plane, print its mesh, play a few changes, exit
  --once: print what the control plane holds, then exit`);
  process.exit(0);
}

// Without an address, serve a small mesh from the in-process fake control plane.
const fake = args.address ? undefined : await FakeControlPlane.start();
if (fake) {
  for (const a of initialAddresses) fake.set(addressType, a);
  for (const p of initialPolicies) fake.set(authorizationType, p);
}
const address = args.address ?? (fake as FakeControlPlane).address;

const client = new DeltaAdsClient({
  address,
  rootCa: args['root-ca'],
  token: args['token-file'] ? { file: args['token-file'] } : undefined,
  clusterId: args['cluster-id'],
  node: {
    podName: args['pod-name'],
    podNamespace: args['pod-namespace'],
    instanceIp: args['instance-ip'],
  },
});
client.on('connect', ({ attempt }) =>
  console.log(`# connected to ${address} (attempt ${attempt})`),
);
client.on('disconnect', (d) =>
  console.error(
    `# disconnected (${d.reason}): ${d.error?.message ?? 'stream ended'}; retry in ${d.retryInMs} ms`,
  ),
);
client.on('nack', (n) => console.error(`# NACK ${n.typeUrl}: ${n.message}`));
client.start();

const stop = new AbortController();
process.once('SIGINT', () => stop.abort());
process.once('SIGTERM', () => stop.abort());
await client.ready({ signal: stop.signal }).catch(() => {});

// The watcher first yields one batch per type already held (as `added`), then every change
// in order. Count printed batches so the scripted story can wait for each of its changes.
let printed = 0;
const printedWaiters: { count: number; resolve(): void }[] = [];
const untilPrinted = (count: number) =>
  new Promise<void>((resolve) => {
    if (printed >= count) resolve();
    else printedWaiters.push({ count, resolve });
  });
const heldTypes = [
  client.snapshot(addressType).size,
  client.snapshot(authorizationType).size,
].filter((size) => size > 0);
const watching = (async () => {
  for await (const change of client.watch({ signal: stop.signal })) {
    for (const line of formatChange(change)) console.log(line);
    printed++;
    for (const w of printedWaiters.filter((w) => printed >= w.count)) w.resolve();
  }
})();

if (!stop.signal.aborted) {
  await untilPrinted(heldTypes.length);
  console.log(
    `# in sync: ${client.snapshot(addressType).size} addresses, ${client.snapshot(authorizationType).size} policies`,
  );
  if (fake) {
    for (const [i, step] of story.entries()) {
      console.log(`# ${step.title}`);
      step.apply(fake);
      await untilPrinted(heldTypes.length + i + 1);
    }
  }
  if (fake || args.once) stop.abort();
}
if (!stop.signal.aborted) {
  await new Promise((resolve) => stop.signal.addEventListener('abort', resolve, { once: true }));
}
await client.close();
await watching;
await fake?.close();
