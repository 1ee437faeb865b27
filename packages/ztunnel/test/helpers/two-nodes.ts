import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { freePort, type MeshNode, startNode, tmp } from './mesh.js';

/** A client workload (127.0.0.2) and a server workload (127.0.0.4) whose app listens on `appPort`. */
export async function twoNodes(
  appPort: number,
  env: Record<string, string> = {},
): Promise<{ client: MeshNode; server: MeshNode; file: string }> {
  const dir = tmp('zt-two-');
  const file = join(dir, 'mesh.yaml');
  writeFileSync(
    file,
    `workloads:
- { uid: c, name: client, namespace: default, serviceAccount: client, trustDomain: cluster.local, workloadIps: ["127.0.0.2"], protocol: HBONE }
- { uid: s, name: server, namespace: default, serviceAccount: server, trustDomain: cluster.local, workloadIps: ["127.0.0.4"], protocol: HBONE,
    services: { "default/server.default.svc.cluster.local": { 80: ${appPort} } } }
services:
- { name: server, namespace: default, hostname: server.default.svc.cluster.local, vips: ["/10.96.0.40"], ports: { 80: ${appPort} } }
`,
  );
  const caDir = join(dir, 'ca');
  const hbonePort = await freePort();
  const server = await startNode({
    ip: '127.0.0.4',
    workload: 'default/server/server',
    localXdsPath: file,
    caDir,
    hbonePort,
    env,
  });
  const client = await startNode({
    ip: '127.0.0.2',
    workload: 'default/client/client',
    localXdsPath: file,
    caDir,
    hbonePort,
    env,
  });
  return { client, server, file };
}
