import { afterEach, describe, expect, it } from 'vitest';
import {
  addressType,
  authorizationType,
  type DeltaAdsClient,
  type DisconnectEvent,
  type ResourceChange,
} from '../src/index.js';
import { FakeControlPlane } from '../src/testing/index.js';
import { policy, startClient, workload } from './fixtures.js';

const cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

async function synced(extra: Parameters<typeof startClient>[1] = {}) {
  const cp = await FakeControlPlane.start();
  cleanups.push(() => cp.destroy());
  cp.set(addressType, [workload(1), workload(2)], { version: 'a' });
  cp.set(authorizationType, policy('p1'), { version: 'a' });
  const client = startClient(cp.address, extra);
  cleanups.push(() => client.close());
  await client.ready();
  return { cp, client };
}

function collect(client: DeltaAdsClient) {
  const changes: ResourceChange[] = [];
  const disconnects: DisconnectEvent[] = [];
  client.on('change', (c) => changes.push(c));
  client.on('disconnect', (d) => disconnects.push(d));
  return { changes, disconnects };
}

describe('reconnect and resume', () => {
  it('resumes after a server restart with the same versions: nothing is resent or changed', async () => {
    const { cp, client } = await synced();
    const { changes } = collect(client);
    const before = cp.streams.length;
    await cp.restart();
    const resumed = await cp.waitForRequest(
      (r) => r.kind === 'initial' && r.typeUrl === addressType.typeUrl && r.stream > before,
    );
    expect(resumed.initialResourceVersions).toEqual({
      'Kubernetes//Pod/default/pod-1': 'a',
      'Kubernetes//Pod/default/pod-2': 'a',
    });
    const authz = await cp.waitForRequest(
      (r) => r.kind === 'initial' && r.typeUrl === authorizationType.typeUrl && r.stream > before,
    );
    expect(authz.initialResourceVersions).toEqual({ 'default/p1': 'a' });
    // Both initial responses (empty) are ACKed on the new stream.
    await cp.waitForRequest(
      (r) => r.kind === 'ack' && r.typeUrl === authorizationType.typeUrl && r.stream > before,
    );
    await cp.waitForRequest(
      (r) => r.kind === 'ack' && r.typeUrl === addressType.typeUrl && r.stream > before,
    );
    expect(changes).toEqual([]);
    expect(client.snapshot(addressType).size).toBe(2);
  });

  it('resumes after a server restart with different versions: updates and removals arrive', async () => {
    const { cp, client } = await synced();
    const { changes } = collect(client);
    await cp.stop();
    cp.clear();
    cp.set(addressType, [workload(1, { node: 'node-z' }), workload(3)], { version: 'b' });
    cp.set(authorizationType, policy('p1'), { version: 'a' });
    await cp.restart();
    await new Promise<void>((resolve) => {
      const check = () => {
        if (client.snapshot(addressType).has('Kubernetes//Pod/default/pod-3')) resolve();
      };
      client.on('change', check);
    });
    const change = changes.find((c) => c.typeUrl === addressType.typeUrl)!;
    expect(change.added.map((a) => a.name)).toEqual(['Kubernetes//Pod/default/pod-3']);
    expect(change.updated.map((a) => [a.name, a.version])).toEqual([
      ['Kubernetes//Pod/default/pod-1', 'b'],
    ]);
    expect(change.removed.map((r) => r.name)).toEqual(['Kubernetes//Pod/default/pod-2']);
    expect(changes.filter((c) => c.typeUrl === authorizationType.typeUrl)).toEqual([]);
    expect([...client.snapshot(addressType).keys()].sort()).toEqual([
      'Kubernetes//Pod/default/pod-1',
      'Kubernetes//Pod/default/pod-3',
    ]);
  });

  it('reconnects at once after a clean end and counts it as Complete', async () => {
    const { cp, client } = await synced();
    const { disconnects } = collect(client);
    const before = cp.streams.length;
    cp.dropStreams({ code: 0 });
    await cp.waitForStream({ after: before });
    expect(disconnects).toEqual([{ reason: 'Complete', retryInMs: 0 }]);
    expect(client.counters().connectionTerminations).toEqual({
      ConnectionError: 0,
      Error: 0,
      Reconnect: 0,
      Complete: 1,
    });
  });

  it('treats CANCELLED and "transport is closing" as Reconnect, other codes as Error with backoff', async () => {
    const { cp, client } = await synced();
    const { disconnects } = collect(client);
    let before = cp.streams.length;
    cp.dropStreams({ code: 1, details: 'cancelled by server' });
    await cp.waitForStream({ after: before });
    before = cp.streams.length;
    cp.dropStreams({ code: 14, details: 'transport is closing' });
    await cp.waitForStream({ after: before });
    before = cp.streams.length;
    cp.dropStreams({ code: 7, details: 'permission denied' });
    await cp.waitForStream({ after: before });
    expect(disconnects.map((d) => [d.reason, d.retryInMs, d.error?.code])).toEqual([
      ['Reconnect', 0, 'ERR_XDS_STREAM'],
      ['Reconnect', 0, 'ERR_XDS_STREAM'],
      ['Error', 10, 'ERR_XDS_STREAM'],
    ]);
    expect(disconnects[2]!.error?.message).toBe(
      'stream ended with PERMISSION_DENIED: permission denied',
    );
  });

  it('backs off from 10 ms doubling while the server is down, then resumes', async () => {
    const { cp, client } = await synced({ backoff: { initialMs: 10, maxMs: 80 } });
    const { disconnects } = collect(client);
    await cp.stop();
    await new Promise<void>((resolve) => {
      client.on('disconnect', () => {
        if (disconnects.length >= 7) resolve();
      });
    });
    const before = cp.streams.length;
    await cp.restart();
    await cp.waitForStream({ after: before });
    // A server shutdown cancels the stream (immediate reconnect, as ztunnel for CANCELLED);
    // then each refused connect doubles the delay up to the cap.
    expect(disconnects[0]!.reason).toBe('Reconnect');
    expect(disconnects.slice(0, 7).map((d) => d.retryInMs)).toEqual([0, 10, 20, 40, 80, 80, 80]);
    expect(disconnects.slice(1, 7).every((d) => d.reason === 'ConnectionError')).toBe(true);
    expect(disconnects[1]!.error?.code).toBe('ERR_XDS_CONNECT');
    expect(client.snapshot(addressType).size).toBe(2);
  });

  it('applies a response that arrived just before the stream failed and resumes from it', async () => {
    const { cp, client } = await synced();
    const { disconnects } = collect(client);
    const before = cp.streams.length;
    cp.set(addressType, workload(1, { node: 'node-q' }), { version: 'c' });
    cp.dropStreams({ code: 13, details: 'internal error mid-push' });
    const resumed = await cp.waitForRequest(
      (r) => r.kind === 'initial' && r.typeUrl === addressType.typeUrl && r.stream > before,
    );
    expect(resumed.initialResourceVersions).toEqual({
      'Kubernetes//Pod/default/pod-1': 'c',
      'Kubernetes//Pod/default/pod-2': 'a',
    });
    expect(client.get(addressType, 'Kubernetes//Pod/default/pod-1')?.value).toEqual(
      workload(1, { node: 'node-q' }),
    );
    expect(disconnects[0]).toMatchObject({ reason: 'Error', error: { code: 'ERR_XDS_STREAM' } });
  });
});
