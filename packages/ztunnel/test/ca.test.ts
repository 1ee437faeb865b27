import { writeFileSync } from 'node:fs';
import { type AddressInfo, createServer as createTcpServer, type Server } from 'node:net';
import { join } from 'node:path';
import { IstioCaServer, LocalCa } from '@mesh/spiffe';
import { afterEach, describe, expect, it } from 'vitest';
import { socksConnect } from '../src/testing/index.js';
import { freePort, type MeshNode, startNode, tmp, waitFor, waitReady } from './helpers/mesh.js';
import { twoNodes } from './helpers/two-nodes.js';

let nodes: MeshNode[] = [];
let ca: IstioCaServer | undefined;
let app: Server | undefined;
afterEach(async () => {
  await Promise.all(nodes.map((n) => n.zt.close()));
  nodes = [];
  await ca?.close();
  ca = undefined;
  app?.close();
});

async function dump(n: MeshNode) {
  const a = n.zt.addresses.admin;
  return (await (await fetch(`http://${a.address}:${a.port}/config_dump`)).json()) as {
    certificates: {
      identity: string;
      state: string;
      certChain: { pem: string; serialNumber: string; expirationTime: string }[];
      rootCerts: unknown[];
    }[];
  };
}

describe('Istio CA over gRPC', () => {
  it('gets workload certificates from CA_ADDRESS and serves mTLS with them', async () => {
    const localCa = LocalCa.create({ trustDomain: 'cluster.local' });
    ca = new IstioCaServer({
      ca: localCa,
      tokens: { 'ztunnel-token': { name: 'istio-system/ztunnel' } },
    });
    const port = await ca.listen({ host: '127.0.0.1' });
    app = createTcpServer((s) => s.end('hello from the app\n'));
    await new Promise<void>((r) => app!.listen(0, '127.0.0.4', r));
    const { client, server } = await twoNodes((app.address() as AddressInfo).port, {
      CA_ADDRESS: `https://127.0.0.1:${port}`,
      CA_ROOT_CA: ca.rootCert,
      AUTH_TOKEN: 'ztunnel-token',
    });
    nodes = [client, server];
    for (const n of nodes) await waitReady(n);
    const s = await socksConnect(
      { host: '127.0.0.2', port: client.zt.addresses.socks5!.port },
      { host: '10.96.0.40', port: 80 },
    );
    const reply = await new Promise<string>((resolve) => {
      let text = '';
      s.removeAllListeners('close');
      s.on('data', (d) => {
        text += d;
      });
      s.on('close', () => resolve(text));
      s.resume();
    });
    expect(reply).toBe('hello from the app\n');
    const d = await dump(server);
    expect(d.certificates[0]).toMatchObject({
      identity: 'spiffe://cluster.local/ns/default/sa/server',
      state: 'Available',
    });
    const leafPem = Buffer.from(d.certificates[0]!.certChain[0]!.pem, 'base64').toString();
    expect(leafPem).toContain('BEGIN CERTIFICATE');
    expect(d.certificates[0]!.rootCerts).toHaveLength(1);
  });

  it('starts while the CA is unreachable, reports the certificate pending, and stays up', async () => {
    const dir = tmp('zt-ca-');
    const file = join(dir, 'mesh.yaml');
    writeFileSync(
      file,
      'workloads:\n- { uid: w, name: web, namespace: default, serviceAccount: web, trustDomain: cluster.local, workloadIps: ["127.0.0.5"], protocol: HBONE }\n',
    );
    const dead = await freePort();
    const n = await startNode({
      ip: '127.0.0.5',
      workload: 'default/web/web',
      localXdsPath: file,
      caDir: join(dir, 'ca'),
      hbonePort: await freePort(),
      env: {
        CA_ADDRESS: `https://127.0.0.1:${dead}`,
        CA_ROOT_CA: LocalCa.create().trustBundle.toPem(),
      },
    });
    nodes = [n];
    const r = n.zt.addresses.readiness;
    const res = await fetch(`http://${r.address}:${r.port}/healthz/ready`);
    expect(res.status).toBe(500);
    expect(await res.text()).toBe(
      'not ready, pending: certificate spiffe://cluster.local/ns/default/sa/web\n',
    );
    const line = await waitFor(
      () => n.logs.lines.find((l) => l.msg === 'cannot fetch the workload certificate'),
      'fetch failure log',
    );
    expect(line).toMatchObject({
      component: 'identity',
      identity: 'spiffe://cluster.local/ns/default/sa/web',
    });
    const cert = await waitFor(
      async () => (await dump(n)).certificates.find((c) => c.state.startsWith('Unavailable')),
      'Unavailable state',
    );
    expect(cert.identity).toBe('spiffe://cluster.local/ns/default/sa/web');
  });
});
