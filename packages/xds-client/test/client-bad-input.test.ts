import { readdirSync } from 'node:fs';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { istio } from '../src/gen/proto.js';
import {
  addressType,
  authorizationType,
  type DeltaAdsClient,
  type DisconnectEvent,
  encodeAddress,
  type NackEvent,
} from '../src/index.js';
import { FakeControlPlane } from '../src/testing/index.js';
import { bogus, startClient, workload } from './fixtures.js';

const URL = addressType.typeUrl;
const fdCount = () => readdirSync('/proc/self/fd').length;

let cp: FakeControlPlane;
let client: DeltaAdsClient;
let fdsBefore: number;

beforeEach(async () => {
  fdsBefore = fdCount();
  cp = await FakeControlPlane.start();
  cp.set(addressType, [workload(1), workload(2)]);
  client = startClient(cp.address);
  await client.ready();
});

afterEach(async () => {
  await client.close();
  await cp.destroy();
  // grpc-js closes sockets asynchronously after close().
  for (let i = 0; i < 50 && fdCount() > fdsBefore; i++) await new Promise((r) => setTimeout(r, 20));
  expect(fdCount()).toBeLessThanOrEqual(fdsBefore);
});

function nextNack(): Promise<NackEvent> {
  return new Promise((resolve) => client.once('nack', resolve));
}

const good = (n: number) => ({
  name: `Kubernetes//Pod/default/pod-${n}`,
  version: 'v9',
  body: encodeAddress(workload(n, { node: 'node-b' })),
});

/** Push a response with one good resource and `bad`; expect a NACK for `bad` only. */
async function pushMixed(bad: {
  name: string;
  version?: string;
  typeUrl?: string;
  body?: Uint8Array;
}) {
  const nackP = nextNack();
  const nonce = cp.pushRaw(URL, [good(3), bad]);
  const nack = await nackP;
  expect(nack.nonce).toBe(nonce);
  const wire = await cp.waitForRequest((r) => r.kind === 'nack' && r.responseNonce === nonce);
  expect(wire.errorDetail?.message).toBe(nack.message);
  // The good resource of the same response is applied, and earlier state is kept.
  expect(client.get(addressType, good(3).name)?.value).toEqual(workload(3, { node: 'node-b' }));
  expect(client.get(addressType, 'Kubernetes//Pod/default/pod-1')?.value).toEqual(workload(1));
  return nack;
}

describe('bad input from the control plane', () => {
  it('NACKs a resource whose Any carries another type URL and keeps the good ones', async () => {
    const nack = await pushMixed({
      name: 'bad-type',
      typeUrl: authorizationType.typeUrl,
      body: encodeAddress(workload(7)),
    });
    expect(nack.message).toBe(
      'bad-type: body has type URL "type.googleapis.com/istio.security.Authorization", want "type.googleapis.com/istio.workload.Address"',
    );
    expect(client.get(addressType, 'bad-type')).toBeUndefined();
  });

  it('NACKs corrupt protobuf bytes with the decoder message', async () => {
    const nack = await pushMixed({
      name: 'corrupt',
      body: Uint8Array.of(0x0a, 0xff, 0xff, 0xff, 0x0f),
    });
    expect(nack.message).toMatch(/^corrupt: not a valid istio\.workload\.Address: /);
  });

  it('NACKs a workload address of 5 bytes, naming the field', async () => {
    const body = istio.workload.Address.encode({
      workload: { uid: 'five', addresses: [Uint8Array.of(10, 0, 0, 1, 9)] },
    }).finish();
    const nack = await pushMixed({ name: 'five', body });
    expect(nack.message).toBe('five: workload.addresses[0]: IP address of 5 bytes (want 4 or 16)');
  });

  it('NACKs an unknown enum value and LEGACY_ISTIO_MTLS, all problems in one message', async () => {
    const body = istio.workload.Address.encode({
      workload: { uid: 'enum', status: bogus(9), tunnelProtocol: 2 },
    }).finish();
    const nack = await pushMixed({ name: 'enum', body });
    expect(nack.message).toBe(
      'enum: workload.tunnel_protocol: LEGACY_ISTIO_MTLS is not supported, workload.status: unknown WorkloadStatus value 9',
    );
  });

  it('NACKs every name that appears twice in one response and applies neither copy', async () => {
    const name = 'Kubernetes//Pod/default/pod-1';
    const nackP = nextNack();
    cp.pushRaw(URL, [
      { name, version: 'v8', body: encodeAddress(workload(1, { node: 'x' })) },
      good(3),
      { name, version: 'v9', body: encodeAddress(workload(1, { node: 'y' })) },
    ]);
    const nack = await nackP;
    expect(nack.message).toBe(`${name}: appears 2 times in one response`);
    expect(client.get(addressType, name)?.value).toEqual(workload(1));
    expect(client.get(addressType, good(3).name)).toBeDefined();
  });

  it('names every rejected resource in one NACK, joined by "; "', async () => {
    const nackP = nextNack();
    cp.pushRaw(URL, [{ name: 'a', body: Uint8Array.of(0xff) }, good(4), { name: 'b' }]);
    const nack = await nackP;
    expect(nack.rejected.map((r) => r.name)).toEqual(['a', 'b']);
    expect(nack.message.split('; ')).toHaveLength(2);
    expect(nack.message).toContain('b: resource has no body');
    expect(client.get(addressType, good(4).name)).toBeDefined();
  });

  it('refuses a response that replays a nonce already answered, without applying it', async () => {
    const nonce = cp.pushRaw(URL, [good(5)]);
    await cp.waitForRequest((r) => r.kind === 'ack' && r.responseNonce === nonce);
    const nackP = nextNack();
    cp.pushRaw(URL, [{ name: good(5).name, version: 'v1', body: encodeAddress(workload(5)) }], {
      nonce,
    });
    const nack = await nackP;
    expect(nack.message).toBe(
      `nonce "${nonce}" was already answered on this stream; response ignored`,
    );
    expect(client.get(addressType, good(5).name)?.version).toBe('v9');
  });

  it('NACKs a response for a type it never subscribed to', async () => {
    const nackP = nextNack();
    cp.pushRaw('type.googleapis.com/envoy.config.cluster.v3.Cluster', [
      { name: 'c', body: Uint8Array.of() },
    ]);
    expect((await nackP).message).toBe(
      'type URL "type.googleapis.com/envoy.config.cluster.v3.Cluster" was not subscribed',
    );
  });

  it('survives a stream that breaks mid-response, keeps its state and resumes from it', async () => {
    const disconnected = new Promise<DisconnectEvent>((r) => client.once('disconnect', r));
    const streamsBefore = cp.streams.length;
    cp.pushBytes(Uint8Array.of(0x12, 0xff, 0xff, 0x01));
    const event = await disconnected;
    expect(event.reason).toBe('Error');
    expect(event.error?.code).toBe('ERR_XDS_STREAM');
    const resumed = await cp.waitForRequest(
      (r) => r.kind === 'initial' && r.typeUrl === URL && r.stream > streamsBefore,
    );
    expect(resumed.initialResourceVersions).toEqual(cp.versions(addressType));
    expect(client.snapshot(addressType).size).toBe(2);
    expect(client.counters().connectionTerminations.Error).toBe(1);
  });

  it('keeps the previous value of a resource whose update is rejected, and asks for it again on reconnect', async () => {
    const name = 'Kubernetes//Pod/default/pod-2';
    const body = istio.workload.Address.encode({
      workload: { uid: name, addresses: [Uint8Array.of(1)] },
    }).finish();
    const nackP = nextNack();
    cp.pushRaw(URL, [{ name, version: 'bad', body }]);
    await nackP;
    expect(client.get(addressType, name)?.value).toEqual(workload(2));
    const before = cp.streams.length;
    cp.dropStreams({ code: 0 });
    const resumed = await cp.waitForRequest(
      (r) => r.kind === 'initial' && r.typeUrl === URL && r.stream > before,
    );
    expect(Object.keys(resumed.initialResourceVersions)).toEqual(['Kubernetes//Pod/default/pod-1']);
  });
});
