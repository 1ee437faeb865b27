import * as grpc from '@grpc/grpc-js';
import { afterEach, describe, expect, it } from 'vitest';
import { addressType, type DeltaAdsClient } from '../src/index.js';
import { FakeControlPlane } from '../src/testing/index.js';
import { startClient, workload } from './fixtures.js';

const cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

async function plane(): Promise<FakeControlPlane> {
  const cp = await FakeControlPlane.start();
  cleanups.push(() => cp.destroy());
  return cp;
}

function client(cp: FakeControlPlane): DeltaAdsClient {
  const c = startClient(cp.address);
  cleanups.push(() => c.close());
  return c;
}

describe('FakeControlPlane', () => {
  it('pushes every change to every subscribed stream', async () => {
    const cp = await plane();
    const a = client(cp);
    const b = client(cp);
    await Promise.all([a.ready(), b.ready()]);
    const changed = Promise.all([a, b].map((c) => new Promise((r) => c.once('change', r))));
    cp.set(addressType, workload(9));
    await changed;
    expect(a.snapshot(addressType)).toEqual(b.snapshot(addressType));
    expect(a.snapshot(addressType).size).toBe(1);
    expect(cp.openStreams).toHaveLength(2);
  });

  it('answers state-of-the-world ADS with UNIMPLEMENTED, as ztunnel test servers do', async () => {
    const cp = await plane();
    const raw = new grpc.Client(
      cp.address.replace('http://', ''),
      grpc.credentials.createInsecure(),
    );
    cleanups.push(async () => raw.close());
    const call = raw.makeBidiStreamRequest(
      '/envoy.service.discovery.v3.AggregatedDiscoveryService/StreamAggregatedResources',
      (b: Buffer) => b,
      (b: Buffer) => b,
    );
    call.on('error', () => {});
    const status = await new Promise<grpc.StatusObject>((r) => call.on('status', r));
    expect(status.code).toBe(grpc.status.UNIMPLEMENTED);
    expect(status.details).toBe('only delta xDS is served');
  });

  it('refuses raw pushes when no stream is open, with ERR_XDS_NO_STREAM', async () => {
    const cp = await plane();
    expect(() => cp.pushRaw(addressType.typeUrl, [])).toThrow(
      expect.objectContaining({ code: 'ERR_XDS_NO_STREAM' }),
    );
  });

  it('closes gracefully, ending client streams cleanly', async () => {
    const cp = await FakeControlPlane.start();
    const c = client(cp);
    await c.ready();
    const ended = new Promise((r) => c.once('disconnect', r));
    await cp.close();
    expect(await ended).toMatchObject({ reason: 'Complete' });
    await cp.close(); // idempotent
  });
});
