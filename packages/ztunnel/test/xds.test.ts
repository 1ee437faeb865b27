import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { addressType, authorizationType, type Workload } from '@mesh/xds-client';
import { FakeControlPlane } from '@mesh/xds-client/testing';
import { afterEach, describe, expect, it } from 'vitest';
import { freePort, type MeshNode, startNode, tmp, waitFor } from './helpers/mesh.js';

const workload = (over: Partial<Workload>): Workload => ({
  uid: 'Kubernetes//Pod/default/web',
  name: 'web',
  namespace: 'default',
  addresses: ['127.0.0.5'],
  hostname: '',
  network: '',
  tunnelProtocol: 'HBONE',
  trustDomain: 'cluster.local',
  serviceAccount: 'web',
  node: '',
  canonicalName: 'web',
  canonicalRevision: 'v1',
  workloadType: 'POD',
  workloadName: 'web',
  nativeTunnel: false,
  authorizationPolicies: [],
  status: 'HEALTHY',
  clusterId: 'Kubernetes',
  services: {},
  networkMode: 'STANDARD',
  capacity: 1,
  ...over,
});

const nodes: MeshNode[] = [];
let cp: FakeControlPlane | undefined;
afterEach(async () => {
  for (const n of nodes.splice(0)) await n.zt.close();
  await cp?.close();
  cp = undefined;
});

async function ready(n: MeshNode): Promise<{ status: number; text: string }> {
  const r = n.zt.addresses.readiness;
  const res = await fetch(`http://${r.address}:${r.port}/healthz/ready`);
  return { status: res.status, text: await res.text() };
}

async function dump(
  n: MeshNode,
): Promise<{ workloads: { uid: string }[]; policies: { name: string }[] }> {
  const a = n.zt.addresses.admin;
  return (await fetch(`http://${a.address}:${a.port}/config_dump`)).json() as never;
}

describe('xDS', () => {
  it('serves the local config and reports xds pending while the xDS server is down', async () => {
    const dir = tmp('zt-xds-');
    const file = join(dir, 'mesh.yaml');
    writeFileSync(
      file,
      'workloads:\n- { uid: w, name: web, namespace: default, serviceAccount: web, trustDomain: cluster.local, workloadIps: ["127.0.0.5"], protocol: HBONE }\n',
    );
    const down = await freePort();
    const n = await startNode({
      ip: '127.0.0.5',
      workload: 'default/web/web',
      localXdsPath: file,
      caDir: join(dir, 'ca'),
      hbonePort: await freePort(),
      env: { XDS_ADDRESS: `http://127.0.0.1:${down}` },
    });
    nodes.push(n);
    const r = await waitFor(async () => {
      const x = await ready(n);
      return x.text === 'not ready, pending: xds\n' ? x : undefined;
    }, 'only xds pending');
    expect(r.status).toBe(500);
    expect((await dump(n)).workloads.map((w) => w.uid)).toEqual(['w']);
    await waitFor(
      () =>
        n.logs.lines.find(
          (l) => l.component === 'xds' && l.msg === 'xDS stream ended; reconnecting',
        ),
      'reconnect log',
    );
  });

  it('starts the proxy when xDS delivers the workload and applies later changes without restart', async () => {
    cp = await FakeControlPlane.start();
    const dir = tmp('zt-xds-');
    const config = `${dir}/empty.yaml`;
    writeFileSync(config, '');
    const n = await startNode({
      ip: '127.0.0.5',
      workload: 'default/web/web',
      localXdsPath: config,
      caDir: join(dir, 'ca'),
      hbonePort: await freePort(),
      env: {
        XDS_ADDRESS: cp.address,
        POD_NAME: 'ztunnel-abc',
        POD_NAMESPACE: 'istio-system',
        ISTIO_META_DNS_CAPTURE: 'true',
      },
    });
    nodes.push(n);
    expect((await ready(n)).text).toContain('workload default/web/web');
    cp.set(addressType, { kind: 'workload', workload: workload({}) });
    await waitFor(
      async () => ((await ready(n)).status === 200 ? true : undefined),
      'ready after the workload arrives',
    );
    expect(n.zt.addresses.inbound?.port).toBeGreaterThan(0);

    cp.set(authorizationType, {
      name: 'deny-all',
      namespace: 'default',
      scope: 'NAMESPACE',
      action: 'DENY',
      dryRun: false,
      rules: [{ clauses: [] }],
    });
    await waitFor(
      async () => ((await dump(n)).policies.some((p) => p.name === 'deny-all') ? true : undefined),
      'policy from xDS',
    );
    cp.remove(authorizationType, ['default/deny-all']);
    await waitFor(
      async () => ((await dump(n)).policies.length === 0 ? true : undefined),
      'policy removed',
    );

    const stats = n.zt.addresses.stats;
    const metrics = await (await fetch(`http://${stats.address}:${stats.port}/metrics`)).text();
    expect(metrics).toMatch(
      /istio_xds_message_total\{url="type.googleapis.com\/istio.workload.Address"\} [1-9]/,
    );
    const req = cp.requests.find((r) => r.node !== undefined);
    expect(req?.node?.id).toBe(
      'ztunnel~1.1.1.1~ztunnel-abc.istio-system~istio-system.svc.cluster.local',
    );
  });
});
