import diagnostics from 'node:diagnostics_channel';
import { afterEach, describe, expect, it } from 'vitest';
import { istio } from '../src/gen/proto.js';
import {
  addressType,
  authorizationType,
  type DeltaAdsClient,
  type ResourceChange,
} from '../src/index.js';
import { FakeControlPlane } from '../src/testing/index.js';
import { bogus, policy, service, startClient, workload } from './fixtures.js';

const cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

async function setup(extra: Parameters<typeof startClient>[1] = {}) {
  const cp = await FakeControlPlane.start();
  cleanups.push(() => cp.destroy());
  return { cp, connect: () => track(startClient(cp.address, extra)) };
}

function track(client: DeltaAdsClient): DeltaAdsClient {
  cleanups.push(() => client.close());
  return client;
}

describe('DeltaAdsClient against the fake control plane', () => {
  it('syncs workloads, services and policies, ACKs each type and becomes ready', async () => {
    const { cp, connect } = await setup();
    cp.set(addressType, [workload(1), workload(2), service(1)]);
    cp.set(authorizationType, policy('allow-default'));
    const client = connect();
    await client.ready();
    expect([...client.snapshot(addressType).keys()].sort()).toEqual([
      'Kubernetes//Pod/default/pod-1',
      'Kubernetes//Pod/default/pod-2',
      'default/svc-1.default.svc.cluster.local',
    ]);
    expect(client.get(authorizationType, 'default/allow-default')?.value).toEqual(
      policy('allow-default'),
    );
    expect(client.get(addressType, 'Kubernetes//Pod/default/pod-1')?.value).toEqual(workload(1));
    for (const type of [addressType, authorizationType]) {
      const ack = await cp.waitForRequest((r) => r.kind === 'ack' && r.typeUrl === type.typeUrl);
      expect(ack.errorDetail).toBeUndefined();
      expect(ack.responseNonce).toMatch(/^nonce-/);
    }
  });

  it('sends one wildcard initial request per type with the node of the spec', async () => {
    const { cp, connect } = await setup();
    connect();
    const initial = await cp.waitForRequest(
      (r) => r.kind === 'initial' && r.typeUrl === authorizationType.typeUrl,
    );
    const first = cp.requests.filter((r) => r.kind === 'initial');
    expect(first.map((r) => r.typeUrl)).toEqual([addressType.typeUrl, authorizationType.typeUrl]);
    expect(initial.subscribe).toEqual([]);
    expect(initial.unsubscribe).toEqual([]);
    expect(initial.node?.id).toBe(
      'ztunnel~10.1.0.9~ztunnel-abc.istio-system~istio-system.svc.cluster.local',
    );
    expect(initial.node?.metadata).toMatchObject({
      NAME: 'ztunnel-abc',
      NAMESPACE: 'istio-system',
      INSTANCE_IPS: '10.1.0.9',
      NODE_NAME: 'node-a',
    });
  });

  it('delivers updates and removals as ordered batches to watchers and events', async () => {
    const { cp, connect } = await setup();
    cp.set(addressType, [workload(1), workload(2)]);
    const client = connect();
    await client.ready();
    const events: ResourceChange[] = [];
    client.on('change', (c) => events.push(c));
    const batches = client.watch();
    const first = await batches.next();
    expect(first.value?.added.map((h) => h.name).sort()).toEqual([
      'Kubernetes//Pod/default/pod-1',
      'Kubernetes//Pod/default/pod-2',
    ]);

    cp.set(addressType, workload(1, { status: 'UNHEALTHY' }));
    const update = (await batches.next()).value!;
    expect(update.updated).toHaveLength(1);
    expect(update.updated[0]!.previous).toEqual(workload(1));
    expect(update.updated[0]!.value).toEqual(workload(1, { status: 'UNHEALTHY' }));

    cp.remove(addressType, ['Kubernetes//Pod/default/pod-2']);
    const removal = (await batches.next()).value!;
    expect(removal.removed).toEqual([
      { name: 'Kubernetes//Pod/default/pod-2', previous: workload(2) },
    ]);
    expect(client.snapshot(addressType).has('Kubernetes//Pod/default/pod-2')).toBe(false);
    expect(events).toEqual([update, removal]);
    await batches.return?.();
  });

  it('counts messages and bytes per type URL', async () => {
    const { cp, connect } = await setup();
    cp.set(addressType, [workload(1)]);
    const client = connect();
    await client.ready();
    const c = client.counters();
    expect(c.messages[addressType.typeUrl]).toBe(1);
    expect(c.messageBytes[addressType.typeUrl]).toBeGreaterThan(50);
    expect(c.acks[authorizationType.typeUrl]).toBe(1);
  });

  it('keeps readiness once reached even when a later response is NACKed', async () => {
    const { cp, connect } = await setup();
    cp.set(addressType, workload(1));
    const client = connect();
    await client.ready();
    const nacked = new Promise((r) => client.once('nack', r));
    const bad = istio.security.Authorization.encode({
      name: 'bad',
      namespace: 'ns',
      action: bogus(7),
    }).finish();
    cp.pushRaw(authorizationType.typeUrl, [{ name: 'ns/bad', body: bad }]);
    await nacked;
    expect(client.isReady).toBe(true);
    expect(client.get(authorizationType, 'ns/bad')).toBeUndefined();
  });

  it('stays unready while the first response of a type is NACKed', async () => {
    const cp = await FakeControlPlane.start();
    cleanups.push(() => cp.destroy());
    // Store a resource that encodes fine but fails validation on the client.
    const broken = { ...policy('p'), scope: 'BOGUS' } as unknown as Parameters<
      typeof authorizationType.encode
    >[0];
    cp.set(authorizationType, broken);
    const client = track(startClient(cp.address));
    const nack = await new Promise<{ message: string }>((r) => client.once('nack', r));
    expect(nack.message).toBe('default/p: scope: unknown Scope value -1');
    expect(client.isReady).toBe(false);
    cp.set(authorizationType, policy('p'));
    await client.ready();
    expect(client.get(authorizationType, 'default/p')?.value).toEqual(policy('p'));
  });

  it('publishes ack and nack on diagnostics channels', async () => {
    const { cp, connect } = await setup();
    const seen: unknown[] = [];
    const onAck = (m: unknown) => seen.push(m);
    diagnostics.subscribe('mesh:xds-client:ack', onAck);
    try {
      const client = connect();
      await client.ready();
      expect(seen).toContainEqual({
        typeUrl: addressType.typeUrl,
        nonce: expect.stringMatching(/^nonce-/),
      });
    } finally {
      diagnostics.unsubscribe('mesh:xds-client:ack', onAck);
    }
    expect(cp.streams).toHaveLength(1);
  });

  it('ends watchers on close and rejects ready() afterwards', async () => {
    const { connect } = await setup();
    const client = connect();
    const it1 = client.watch();
    const pending = it1.next();
    await client.close();
    expect(await pending).toEqual({ value: undefined, done: true });
    await expect(client.ready()).rejects.toMatchObject({ code: 'ERR_XDS_CLOSED' });
  });

  it('stops a watcher when its signal aborts', async () => {
    const { cp, connect } = await setup();
    cp.set(addressType, workload(1));
    const client = connect();
    await client.ready();
    const ac = new AbortController();
    const seen: string[] = [];
    for await (const batch of client.watch({ signal: ac.signal, types: [addressType.typeUrl] })) {
      seen.push(...batch.added.map((a) => a.name));
      ac.abort();
    }
    expect(seen).toEqual(['Kubernetes//Pod/default/pod-1']);
  });
});
