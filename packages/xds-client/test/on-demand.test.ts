import { afterEach, describe, expect, it } from 'vitest';
import { addressType, authorizationType, type DeltaAdsClient, XdsError } from '../src/index.js';
import { FakeControlPlane } from '../src/testing/index.js';
import { policy, service, startClient, workload } from './fixtures.js';

const URL = addressType.typeUrl;
const cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

async function onDemand(): Promise<{ cp: FakeControlPlane; client: DeltaAdsClient }> {
  const cp = await FakeControlPlane.start();
  cleanups.push(() => cp.destroy());
  cp.set(addressType, [workload(1), workload(2), service(1)]);
  cp.set(authorizationType, policy('p1'));
  const client = startClient(cp.address, { onDemand: [URL] });
  cleanups.push(() => client.close());
  return { cp, client };
}

describe('on-demand Address lookups', () => {
  it('subscribes to nothing at first ("*" in and out) while policies stay wildcard', async () => {
    const { cp, client } = await onDemand();
    await client.ready();
    const addr = await cp.waitForRequest((r) => r.kind === 'initial' && r.typeUrl === URL);
    expect(addr.subscribe).toEqual(['*']);
    expect(addr.unsubscribe).toEqual(['*']);
    const authz = await cp.waitForRequest(
      (r) => r.kind === 'initial' && r.typeUrl === authorizationType.typeUrl,
    );
    expect(authz.subscribe).toEqual([]);
    expect(client.snapshot(addressType).size).toBe(0);
    expect(client.snapshot(authorizationType).size).toBe(1);
  });

  it('looks up a workload by its network/IP alias and then by name without asking again', async () => {
    const { cp, client } = await onDemand();
    await client.ready();
    const held = await client.lookup(addressType, '/10.0.0.2');
    expect(held?.name).toBe('Kubernetes//Pod/default/pod-2');
    expect(held?.value).toEqual(workload(2));
    const sub = await cp.waitForRequest((r) => r.kind === 'subscribe');
    expect(sub.subscribe).toEqual(['/10.0.0.2']);
    const mark = cp.requests.length;
    expect((await client.lookup(addressType, 'Kubernetes//Pod/default/pod-2'))?.value).toEqual(
      workload(2),
    );
    expect(cp.requests.slice(mark).filter((r) => r.kind === 'subscribe')).toEqual([]);
    // Only what was asked for is held.
    expect([...client.snapshot(addressType).keys()]).toEqual(['Kubernetes//Pod/default/pod-2']);
  });

  it('receives later changes to a looked-up resource', async () => {
    const { cp, client } = await onDemand();
    await client.lookup(addressType, 'default/svc-1.default.svc.cluster.local');
    const changed = new Promise((r) => client.once('change', r));
    cp.set(addressType, service(1, { canonical: false }));
    await changed;
    expect(client.get(addressType, 'default/svc-1.default.svc.cluster.local')?.value).toEqual(
      service(1, { canonical: false }),
    );
  });

  it('resolves undefined when the control plane answers that the name does not exist', async () => {
    const { client } = await onDemand();
    expect(await client.lookup(addressType, '/10.9.9.9')).toBeUndefined();
  });

  it('rejects with the abort reason when the caller gives up', async () => {
    const { cp, client } = await onDemand();
    await client.ready();
    await cp.stop(); // nobody will answer
    const ac = new AbortController();
    const pending = client.lookup(addressType, '/10.0.0.1', { signal: ac.signal });
    ac.abort(new Error('caller gave up'));
    await expect(pending).rejects.toThrow('caller gave up');
  });

  it('re-subscribes looked-up names on a new stream', async () => {
    const { cp, client } = await onDemand();
    await client.lookup(addressType, '/10.0.0.1');
    const before = cp.streams.length;
    cp.dropStreams({ code: 0 });
    const again = await cp.waitForRequest(
      (r) => r.kind === 'initial' && r.typeUrl === URL && r.stream > before,
    );
    expect(again.subscribe).toEqual(['*', '/10.0.0.1']);
    expect(again.unsubscribe).toEqual(['*']);
    expect(Object.keys(again.initialResourceVersions)).toEqual(['Kubernetes//Pod/default/pod-1']);
  });

  it('refuses lookups of wildcard types with ERR_XDS_NOT_ON_DEMAND', async () => {
    const { client } = await onDemand();
    const err = await client.lookup(authorizationType, 'default/p1').catch((e) => e);
    expect(err).toBeInstanceOf(XdsError);
    expect(err.code).toBe('ERR_XDS_NOT_ON_DEMAND');
  });

  it('rejects pending lookups with ERR_XDS_CLOSED on close', async () => {
    const { cp, client } = await onDemand();
    await client.ready();
    await cp.stop();
    const pending = client.lookup(addressType, '/10.0.0.1');
    await client.close();
    await expect(pending).rejects.toMatchObject({ code: 'ERR_XDS_CLOSED' });
  });

  it('is ready at once when every registered type is on demand', async () => {
    const cp = await FakeControlPlane.start();
    cleanups.push(() => cp.destroy());
    const client = startClient(cp.address, { types: [addressType], onDemand: [URL] });
    cleanups.push(() => client.close());
    expect(client.isReady).toBe(true);
    await client.ready();
  });
});
