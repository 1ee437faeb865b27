import { IstioIdentity, LocalCa, SecretManager } from '@mesh/spiffe';
import { afterEach, describe, expect, it } from 'vitest';
import { HboneClient, HboneServer } from '../src/index.js';
import { App, digestUntilEnd, eventually } from './helpers/harness.js';

describe('HBONE with @mesh/spiffe certificates', () => {
  const cleanups: (() => unknown)[] = [];
  afterEach(async () => {
    for (const c of cleanups.splice(0).reverse()) await c();
  });

  it('tunnels with LocalCa-issued SVIDs served by a SecretManager, across a server rotation', {
    timeout: 30_000,
  }, async () => {
    const ca = LocalCa.create({ trustDomain: 'mesh.test' });
    const secrets = new SecretManager({ issuer: ca, ttlSeconds: 3 });
    cleanups.push(() => secrets.close());
    const app = new App();
    const appPort = await app.listen();
    cleanups.push(() => app.close());
    const serverId = IstioIdentity.of({
      trustDomain: 'mesh.test',
      namespace: 'dst',
      serviceAccount: 'server',
    });
    const clientId = IstioIdentity.of({
      trustDomain: 'mesh.test',
      namespace: 'src',
      serviceAccount: 'client',
    });
    const server = new HboneServer({
      certificate: { source: secrets, identity: serverId, refreshIntervalMs: 100 },
      onConnect: (req) => {
        expect(req.peer.identity.equals(clientId)).toBe(true);
        return { type: 'dial', host: '127.0.0.1', port: appPort };
      },
    });
    cleanups.push(() => server.close({ graceMs: 100 }));
    const { port } = await server.listen({ host: '127.0.0.1' });
    const client = new HboneClient({ certificates: secrets, idleTimeoutMs: 50 });
    cleanups.push(() => client.destroy());
    const opts = {
      authority: `127.0.0.1:${appPort}`,
      via: { host: '127.0.0.1', port },
      sourceIdentity: clientId,
      expectedIdentities: [serverId],
    };
    const live = await client.connect(opts);
    const firstSerial = live.peerCertificate.serialNumber;
    const first = server.certificate;
    // The SecretManager renews at half the 3 s lifetime; the server picks it up.
    await eventually(() => server.certificate !== first, 'server certificate rotated', 10_000);
    const second = new HboneClient({ certificates: secrets });
    cleanups.push(() => second.destroy());
    const fresh = await second.connect(opts);
    expect(fresh.peerCertificate.serialNumber).not.toBe(firstSerial);
    fresh.destroy();
    const echoed = digestUntilEnd(live.stream);
    live.stream.end('survived rotation');
    expect((await echoed).length).toBe('survived rotation'.length);
  });
});
