// Triggers the cheap-to-reach channels for real and checks each message has exactly the
// fields the diagnostics-channels page documents for it.
import diagnosticsChannel from 'node:diagnostics_channel';
import { once } from 'node:events';
import { readFileSync } from 'node:fs';
import { type AddressInfo, createServer } from 'node:net';
import { fileURLToPath } from 'node:url';
import { HboneClient, HboneServer } from '@mesh/hbone';
import { loadPolicyDocuments, PolicyStore } from '@mesh/l4-rbac';
import { outboundConnection, TrafficMetrics } from '@mesh/metrics';
import { IstioIdentity, LocalCa } from '@mesh/spiffe';
import { addressType, DeltaAdsClient } from '@mesh/xds-client';
import { FakeControlPlane } from '@mesh/xds-client/testing';
import { Registry } from 'prom-client';
import { afterAll, describe, expect, it } from 'vitest';

const page = readFileSync(
  fileURLToPath(new URL('../reference/diagnostics-channels.md', import.meta.url)),
  'utf8',
);

/** Documented `{ a, b, c? }` fields per channel; undefined when the message is not an object literal. */
function documentedFields(channel: string): { required: string[]; all: string[] } | undefined {
  const row = page.split('\n').find((l) => l.startsWith(`| \`${channel}\` |`));
  const shape = row?.split('|')[2]?.match(/`\{ ([^}]*) \}`/)?.[1];
  if (!shape) return undefined;
  const names = shape.split(',').map((s) => s.trim().split(':')[0]?.trim() ?? '');
  return {
    required: names.filter((n) => !n.endsWith('?')),
    all: names.map((n) => n.replace(/\?$/, '')),
  };
}

const received = new Map<string, Record<string, unknown>[]>();
const channels = [...page.matchAll(/^\| `(mesh:[a-z0-9-]+:[a-z0-9-]+)` \|/gm)].map(
  (m) => m[1] as string,
);
const subscribers = channels.map((name) => {
  const fn = (message: unknown) => {
    const list = received.get(name) ?? [];
    list.push(message as Record<string, unknown>);
    received.set(name, list);
  };
  diagnosticsChannel.subscribe(name, fn);
  return { name, fn };
});
afterAll(() => {
  for (const s of subscribers) diagnosticsChannel.unsubscribe(s.name, s.fn);
});

describe('the diagnostics channel messages', () => {
  it('carry the fields the page documents', async () => {
    const td = 'cluster.local';
    const ca = LocalCa.create({ trustDomain: td });
    const serverId = IstioIdentity.of({
      trustDomain: td,
      namespace: 'a',
      serviceAccount: 'server',
    });
    const clientId = IstioIdentity.of({
      trustDomain: td,
      namespace: 'a',
      serviceAccount: 'client',
    });

    // hbone + spiffe: one tunnel, one refused stream.
    const app = createServer((s) => s.resume().on('end', () => s.end('ok')));
    app.listen(0, '127.0.0.1');
    await once(app, 'listening');
    const appPort = (app.address() as AddressInfo).port;
    const server = new HboneServer({
      certificate: ca.issueSync(serverId),
      onConnect: (req) =>
        req.authority.port === appPort
          ? { type: 'dial', host: '127.0.0.1', port: appPort }
          : { type: 'refuse', status: 401, reason: 'no' },
    });
    const { port } = await server.listen({ host: '127.0.0.1' });
    const client = new HboneClient({ certificates: ca.issueSync(clientId) });
    const base = {
      via: { host: '127.0.0.1', port },
      sourceIdentity: clientId,
      expectedIdentities: [serverId],
    };
    const tunnel = await client.connect({ ...base, authority: `127.0.0.1:${appPort}` });
    tunnel.stream.end('x');
    tunnel.stream.resume();
    await once(tunnel.stream, 'end');
    await client.connect({ ...base, authority: '127.0.0.1:1' }).catch(() => {});

    // l4-rbac
    const store = new PolicyStore();
    store.replaceAll(
      loadPolicyDocuments(
        'apiVersion: security.istio.io/v1\nkind: AuthorizationPolicy\nmetadata: {name: p, namespace: a}\nspec: {}\n',
      ).policies,
    );
    store.evaluate({
      identity: null,
      sourceIp: '10.0.0.1',
      destination: { namespace: 'a' },
      destinationIp: '10.0.0.2',
      destinationPort: 80,
    });

    // metrics
    const traffic = new TrafficMetrics({ registry: new Registry() });
    const source = {
      name: 'c-1',
      namespace: 'a',
      workloadName: 'c',
      canonicalName: 'c',
      canonicalRevision: 'v1',
      trustDomain: td,
      serviceAccount: 'client',
      clusterId: 'Kubernetes',
    };
    traffic
      .open(outboundConnection({ source, protocol: 'tcp' }), { src: '1.1.1.1:1', dst: '2.2.2.2:2' })
      .close();

    // xds-client
    const cp = await FakeControlPlane.start();
    const xds = new DeltaAdsClient({
      address: cp.address,
      node: { podName: 'p', podNamespace: 'n' },
      types: [addressType],
    });
    xds.start();
    await xds.ready();
    await xds.close();
    await cp.close();

    await server.close({ graceMs: 100 });
    await client.close();
    app.close();

    const checked: string[] = [];
    for (const [channel, messages] of received) {
      const doc = documentedFields(channel);
      if (!doc) continue;
      for (const m of messages) {
        for (const f of doc.required) expect(m, `${channel} message has ${f}`).toHaveProperty(f);
        for (const k of Object.keys(m))
          expect(doc.all, `${channel} documents field ${k}`).toContain(k);
      }
      checked.push(channel);
    }
    expect(checked.sort()).toEqual(
      expect.arrayContaining([
        'mesh:hbone:client-connection-open',
        'mesh:hbone:tunnel-close',
        'mesh:hbone:tunnel-open',
        'mesh:hbone:tunnel-refused',
        'mesh:rbac:decision',
        'mesh:spiffe:issued',
        'mesh:xds-client:ack',
        'mesh:xds-client:connect',
      ]),
    );
  });
});
