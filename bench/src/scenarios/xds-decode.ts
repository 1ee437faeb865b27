/**
 * xds-client/decode: what a large mesh costs the xDS client. A push of 10,000 workloads and
 * 1,000 services, then an update of 1% of them, measured three ways in the same run:
 *
 * - `raw protobufjs decode` (baseline): protobufjs reflection decode of the same bytes, no
 *   validation, no plain objects;
 * - `decode + validate`: the package's decoders into a Map, in process;
 * - `push over gRPC`: FakeControlPlane -> DeltaAdsClient on loopback, from `set()` to the
 *   change event (includes the server's encode, gRPC framing, decode, validate, apply, ACK).
 *
 * Heap figures are retained heap after a forced GC, per 10,000 workloads.
 */
import { dirname, join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';
import v8 from 'node:v8';
import vm from 'node:vm';
import {
  type Address,
  addressType,
  DeltaAdsClient,
  decodeAddress,
  encodeAddress,
  type ResourceChange,
} from '@mesh/xds-client';
import { FakeControlPlane } from '@mesh/xds-client/testing';
import protobuf from 'protobufjs';
import type { Measurement, Scenario } from '../scenario.js';

v8.setFlagsFromString('--expose-gc');
const gc = vm.runInNewContext('gc') as () => void;

function workload(n: number, rev = 'v1'): Address {
  return {
    kind: 'workload',
    workload: {
      uid: `Kubernetes//Pod/ns-${n % 50}/app-${n}`,
      name: `app-${n}`,
      namespace: `ns-${n % 50}`,
      addresses: [`10.${(n >> 16) & 0xff}.${(n >> 8) & 0xff}.${n & 0xff}`],
      hostname: '',
      network: '',
      tunnelProtocol: 'HBONE',
      trustDomain: 'cluster.local',
      serviceAccount: `sa-${n % 200}`,
      node: `node-${n % 100}`,
      canonicalName: `app-${n % 1000}`,
      canonicalRevision: rev,
      workloadType: 'POD',
      workloadName: `app-${n % 1000}`,
      nativeTunnel: false,
      authorizationPolicies: ['istio-system/istio_converted_static_strict'],
      status: 'HEALTHY',
      clusterId: 'Kubernetes',
      services: {
        [`ns-${n % 50}/svc-${n % 1000}.ns-${n % 50}.svc.cluster.local`]: [
          { servicePort: 80, targetPort: 8080, appProtocol: 'HTTP11' },
        ],
      },
      networkMode: 'STANDARD',
      capacity: 1,
      locality: { region: 'eu-west1', zone: `eu-west1-${'abc'[n % 3]}`, subzone: '' },
    },
  };
}

function service(n: number): Address {
  return {
    kind: 'service',
    service: {
      name: `svc-${n}`,
      namespace: `ns-${n % 50}`,
      hostname: `svc-${n}.ns-${n % 50}.svc.cluster.local`,
      addresses: [{ network: '', address: `172.20.${(n >> 8) & 0xff}.${n & 0xff}` }],
      ports: [{ servicePort: 80, targetPort: 8080, appProtocol: 'HTTP11' }],
      subjectAltNames: [],
      ipFamilies: 'IPV4_ONLY',
      canonical: true,
      ingressUseWaypoint: false,
      weightedWaypoints: [],
      visibility: 'PUBLIC',
    },
  };
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)]!;
}

const MiB = 1024 * 1024;

const scenario: Scenario = {
  name: 'xds-client/decode',
  description:
    'Push of 10,000 workloads + 1,000 services and a 1% update: decode, validate, apply; time and heap per 10,000 workloads vs raw protobufjs decode',
  kind: 'micro',
  async run(ctx) {
    const W = ctx.quick ? 1_000 : 10_000;
    const S = W / 10;
    const runs = ctx.quick ? 1 : 5;
    const per10k = 10_000 / W;
    const values = [
      ...Array.from({ length: W }, (_, i) => workload(i)),
      ...Array.from({ length: S }, (_, i) => service(i)),
    ];
    const bodies = values.map(encodeAddress);
    const totalBytes = bodies.reduce((a, b) => a + b.length, 0);

    // Baseline: protobufjs reflection types loaded from the package's own .proto files.
    const protoDir = join(
      dirname(fileURLToPath(import.meta.resolve('@mesh/xds-client/package.json'))),
      'proto',
    );
    const root = new protobuf.Root();
    root.resolvePath = (_origin, target) => join(protoDir, target);
    root.loadSync('workload.proto');
    const RawAddress = root.lookupType('istio.workload.Address');

    const rawMs: number[] = [];
    const ourMs: number[] = [];
    // Round -1 warms the JIT up and is not recorded.
    for (let r = -1; r < runs; r++) {
      ctx.signal.throwIfAborted();
      let t = performance.now();
      const raw = bodies.map((b) => RawAddress.decode(b));
      if (r >= 0) rawMs.push(performance.now() - t);
      if (raw.length !== bodies.length) throw new Error('raw decode lost resources');
      t = performance.now();
      const held = new Map<number, Address>();
      bodies.forEach((b, i) => {
        const d = decodeAddress(b);
        if (!d.valid) throw new Error(d.errors.join('; '));
        held.set(i, d.value);
      });
      if (r >= 0) ourMs.push(performance.now() - t);
    }

    // Retained heap of the decoded objects.
    const retained = (make: () => unknown) => {
      gc();
      const before = process.memoryUsage().heapUsed;
      const kept = make();
      gc();
      const after = process.memoryUsage().heapUsed;
      if (!kept) throw new Error('nothing kept');
      return (after - before) / MiB;
    };
    const rawHeap = retained(() => bodies.map((b) => RawAddress.decode(b)));
    const ourHeap = retained(() => bodies.map((b) => decodeAddress(b)));
    const wireMiB = totalBytes / MiB;

    // The real path over loopback gRPC.
    const pushMs: number[] = [];
    const updateMs: number[] = [];
    for (let r = 0; r < runs; r++) {
      ctx.signal.throwIfAborted();
      const cp = await FakeControlPlane.start();
      const client = new DeltaAdsClient({
        address: cp.address,
        node: { podName: 'ztunnel-bench', podNamespace: 'istio-system' },
      }).start();
      try {
        await client.ready({ signal: ctx.signal });
        const nextChange = () =>
          new Promise<ResourceChange>((resolve) => client.once('change', resolve));
        let changed = nextChange();
        let t = performance.now();
        cp.set(addressType, values);
        let change = await changed;
        pushMs.push(performance.now() - t);
        if (change.added.length !== values.length)
          throw new Error(`pushed ${values.length}, got ${change.added.length}`);
        const updates = Array.from({ length: W / 100 }, (_, i) => workload(i * 100, 'v2'));
        changed = nextChange();
        t = performance.now();
        cp.set(addressType, updates);
        change = await changed;
        updateMs.push(performance.now() - t);
        if (change.updated.length !== updates.length) throw new Error('update lost resources');
      } finally {
        await client.close();
        await cp.destroy();
      }
    }

    const extra = { runs, workloads: W, services: S };
    const measurements: Measurement[] = [
      {
        name: 'raw protobufjs decode',
        unit: 'ms/10k workloads',
        value: median(rawMs) * per10k,
        better: 'lower',
        extra,
      },
      {
        name: 'decode + validate',
        unit: 'ms/10k workloads',
        value: median(ourMs) * per10k,
        better: 'lower',
        compareTo: ['raw protobufjs decode'],
        extra,
      },
      {
        name: 'push over gRPC (encode, send, decode, validate, apply, ACK)',
        unit: 'ms/10k workloads',
        value: median(pushMs) * per10k,
        better: 'lower',
        compareTo: ['raw protobufjs decode'],
        extra,
      },
      {
        name: '1% update over gRPC',
        unit: 'ms',
        value: median(updateMs),
        better: 'lower',
        extra: { ...extra, updated: W / 100 },
      },
      {
        name: 'raw protobufjs heap',
        unit: 'MiB/10k workloads',
        value: rawHeap * per10k,
        better: 'lower',
      },
      {
        name: 'decoded plain objects heap',
        unit: 'MiB/10k workloads',
        value: ourHeap * per10k,
        better: 'lower',
        compareTo: ['raw protobufjs heap'],
        extra: { wireMiB: wireMiB * per10k },
      },
    ];
    return {
      measurements,
      notes: [
        `${W} workloads + ${S} services per push, ${(totalBytes / 1024).toFixed(0)} KiB of resource bytes; median of ${runs} runs.`,
        'Figures are scaled to 10,000 workloads; the service count is scaled with them (10:1).',
        'The gRPC push includes the fake control plane encoding every resource on the same event loop.',
      ],
    };
  },
};

export default scenario;
