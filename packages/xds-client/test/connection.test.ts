import { writeFileSync } from 'node:fs';
import { createServer, type Socket } from 'node:net';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { addressType, DeltaAdsClient, type DisconnectEvent, XdsError } from '../src/index.js';
import { FakeControlPlane } from '../src/testing/index.js';
import { makePki, type TestPki } from './certs.js';
import { node, startClient, workload } from './fixtures.js';

let pki: TestPki;
let altPki: TestPki;
beforeAll(() => {
  pki = makePki('DNS:localhost,IP:127.0.0.1');
  altPki = makePki('DNS:istiod.istio-system.svc');
});
afterAll(() => {
  pki.cleanup();
  altPki.cleanup();
});

const cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

async function tlsPlane(p: TestPki): Promise<FakeControlPlane> {
  const cp = await FakeControlPlane.start({ host: 'localhost', tls: { key: p.key, cert: p.cert } });
  cleanups.push(() => cp.destroy());
  cp.set(addressType, workload(1));
  return cp;
}

function client(address: string, extra: Parameters<typeof startClient>[1]): DeltaAdsClient {
  const c = startClient(address, extra);
  cleanups.push(() => c.close());
  return c;
}

function firstDisconnect(c: DeltaAdsClient): Promise<DisconnectEvent> {
  return new Promise((r) => c.once('disconnect', r));
}

describe('connection: TLS, token and headers', () => {
  it('verifies the server against a root CA file and syncs over TLS', async () => {
    const cp = await tlsPlane(pki);
    const c = client(cp.address, { rootCa: pki.caFile });
    await c.ready();
    expect(c.get(addressType, 'Kubernetes//Pod/default/pod-1')?.value).toEqual(workload(1));
  });

  it('accepts the root CA as inline PEM', async () => {
    const cp = await tlsPlane(pki);
    const c = client(cp.address, { rootCa: pki.caPem });
    await c.ready();
    expect(c.isReady).toBe(true);
  });

  it('fails with ConnectionError when the server is not signed by the configured root', async () => {
    const cp = await tlsPlane(pki);
    const c = client(cp.address, { rootCa: altPki.caPem });
    const d = await firstDisconnect(c);
    expect(d.reason).toBe('ConnectionError');
    expect(d.error?.code).toBe('ERR_XDS_CONNECT');
    expect(cp.streams).toEqual([]);
  });

  it('uses the bundled public roots for SYSTEM, which do not trust a private CA', async () => {
    const cp = await tlsPlane(pki);
    const c = client(cp.address, { rootCa: 'SYSTEM' });
    const d = await firstDisconnect(c);
    expect(d.reason).toBe('ConnectionError');
  });

  it('accepts a certificate for the alternate host name only when altHostname names it', async () => {
    const cp = await tlsPlane(altPki);
    const without = client(cp.address, { rootCa: altPki.caFile });
    expect((await firstDisconnect(without)).reason).toBe('ConnectionError');
    await without.close();
    const withAlt = client(cp.address, {
      rootCa: altPki.caFile,
      altHostname: 'istiod.istio-system.svc',
    });
    await withAlt.ready();
    expect(withAlt.snapshot(addressType).size).toBe(1);
  });

  it('re-reads the token file on every connect and sends clusterid and extra headers', async () => {
    const cp = await tlsPlane(pki);
    const tokenFile = join(pki.dir, 'istio-token');
    writeFileSync(tokenFile, 'token-one\n');
    const c = client(cp.address, {
      rootCa: pki.caFile,
      token: { file: tokenFile },
      clusterId: 'cluster-7',
      headers: { 'x-extra': 'yes' },
    });
    const first = await cp.waitForStream();
    expect(first.metadata).toMatchObject({
      authorization: 'Bearer token-one',
      clusterid: 'cluster-7',
      'x-extra': 'yes',
    });
    writeFileSync(tokenFile, 'token-two\n');
    cp.dropStreams({ code: 0 });
    const second = await cp.waitForStream({ after: first.id });
    expect(second.metadata.authorization).toBe('Bearer token-two');
    await c.ready();
  });

  it('defaults clusterid to Kubernetes and sends a fixed token as given', async () => {
    const cp = await FakeControlPlane.start();
    cleanups.push(() => cp.destroy());
    client(cp.address, { token: { value: 'abc' } });
    const s = await cp.waitForStream();
    expect(s.metadata).toMatchObject({ authorization: 'Bearer abc', clusterid: 'Kubernetes' });
  });

  it('reports a missing token file as ERR_XDS_CREDENTIALS and connects once it appears', async () => {
    const cp = await tlsPlane(pki);
    const tokenFile = join(pki.dir, 'later-token');
    const c = client(cp.address, {
      rootCa: pki.caFile,
      token: { file: tokenFile },
      backoff: { maxMs: 50 },
    });
    const d = await firstDisconnect(c);
    expect(d.reason).toBe('ConnectionError');
    expect(d.error?.code).toBe('ERR_XDS_CREDENTIALS');
    writeFileSync(tokenFile, 'late');
    const s = await cp.waitForStream();
    expect(s.metadata.authorization).toBe('Bearer late');
  });

  it('rejects bad options with ERR_XDS_INVALID_OPTIONS', () => {
    expect(() => new DeltaAdsClient({ address: 'https://istiod:15012', node })).toThrow(XdsError);
    try {
      new DeltaAdsClient({
        address: 'http://127.0.0.1:1',
        node: { podName: '', podNamespace: 'x' },
      });
    } catch (e) {
      expect((e as XdsError).code).toBe('ERR_XDS_INVALID_OPTIONS');
    }
    expect.assertions(2);
  });

  it('gives up a connection attempt after connectTimeoutMs when the server never answers', async () => {
    // A TCP listener that accepts and stays silent: the TLS handshake never completes.
    const sockets = new Set<Socket>();
    const silent = createServer((s) => sockets.add(s));
    await new Promise<void>((r) => silent.listen(0, '127.0.0.1', r));
    cleanups.push(async () => {
      for (const s of sockets) s.destroy();
      await new Promise((r) => silent.close(r));
    });
    const port = (silent.address() as { port: number }).port;
    const c = client(`https://127.0.0.1:${port}`, { rootCa: pki.caFile, connectTimeoutMs: 200 });
    const d = await firstDisconnect(c);
    expect(d.reason).toBe('ConnectionError');
    expect(d.error?.message).toBe(
      `cannot connect to https://127.0.0.1:${port}: no connection within 200 ms`,
    );
    expect(sockets.size).toBeGreaterThan(0);
  });
});
