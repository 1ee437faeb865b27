import type { ChildProcess } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { applyRedirect } from '@mesh/redirect';
import { createLab, type Lab, type Pod } from '@mesh/redirect/testing';
import { STATIC_STRICT_YAML } from './transcript.js';

/**
 * A mesh in network namespaces: pods wired to a node namespace, each mesh pod running its own
 * dedicated-mode ztunnel process inside its namespace with istio-cni's in-pod capture rules
 * (outbound TCP → 15001, inbound non-HBONE → 15006, ztunnel's own sockets marked 0x539).
 */
export interface NetnsMesh {
  lab: Lab;
  pods: Record<string, MeshPod>;
  /** The local config file every ztunnel reads. */
  file: string;
  yaml(policies?: string): string;
  close(): Promise<void>;
}

export interface MeshPod {
  name: string;
  pod: Pod;
  mesh: boolean;
  ztunnel?: ChildProcess;
  /** ztunnel's log lines (JSON). */
  logs: Record<string, unknown>[];
}

export const SERVICE_VIP = '10.96.0.10';
const repoRoot = fileURLToPath(new URL('../../../', import.meta.url));
const mainTs = fileURLToPath(new URL('../src/main.ts', import.meta.url));

const APP = `
const http = require('node:http');
http.createServer((req, res) => {
  const body = JSON.stringify({ pod: process.env.POD, path: req.url, from: req.socket.remoteAddress }) + '\\n';
  res.writeHead(200, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) });
  res.end(body);
}).listen(8080, '0.0.0.0');
`;

export async function startNetnsMesh(options: { signal?: AbortSignal } = {}): Promise<NetnsMesh> {
  const dir = mkdtempSync(join(tmpdir(), 'zt-netns-'));
  const lab = await createLab({
    ipv6: false,
    ...(options.signal ? { signal: options.signal } : {}),
  });
  const pods: Record<string, MeshPod> = {};
  try {
    for (const [name, mesh] of [
      ['client1', true],
      ['client2', true],
      ['server1', true],
      ['server2', true],
      ['external', false],
    ] as const) {
      const pod = await lab.addPod({ name });
      pods[name] = { name, pod, mesh, logs: [] };
    }
    const ip = (n: string) => pods[n]!.pod.ip4;
    const workload = (n: string, extra = '') =>
      `- { uid: lab//Pod/default/${n}, name: ${n}, namespace: default, serviceAccount: ${n}, trustDomain: cluster.local, workloadIps: ["${ip(n)}"], protocol: HBONE, canonicalName: ${n.replace(/\d$/, '')}${extra} }`;
    const server = ', services: { "default/server.default.svc.cluster.local": { 80: 8080 } }';
    const yaml = (policies = '') => `workloads:
${workload('client1')}
${workload('client2')}
${workload('server1', `${server}${policies ? ', authorizationPolicies: [default/allow-client1, istio-system/istio_converted_static_strict]' : ''}`)}
${workload('server2', `${server}${policies ? ', authorizationPolicies: [default/allow-client1, istio-system/istio_converted_static_strict]' : ''}`)}
services:
- { name: server, namespace: default, hostname: server.default.svc.cluster.local, vips: ["/${SERVICE_VIP}"], ports: { 80: 8080 } }
${policies}`;
    const file = join(dir, 'mesh.yaml');
    writeFileSync(file, yaml());

    for (const p of Object.values(pods)) {
      if (p.name.startsWith('server') || p.name === 'external') {
        p.pod.spawn(process.execPath, ['-e', APP], {
          env: { ...process.env, POD: p.name },
          stdio: 'ignore',
        });
      }
      if (!p.mesh) continue;
      await applyRedirect({ netns: p.pod.path, mode: 'inpod' });
      const child = p.pod.spawn(
        process.execPath,
        ['--conditions=@mesh/source', '--import', 'tsx', mainTs],
        {
          cwd: repoRoot,
          env: {
            ...process.env,
            PROXY_MODE: 'dedicated',
            PROXY_WORKLOAD_INFO: `default/${p.name}/${p.name}`,
            LOCAL_XDS_PATH: file,
            ZTUNNEL_CA_DIR: join(dir, 'cacerts'),
            PACKET_MARK: '1337',
            ENABLE_ORIG_SRC: 'true',
            IPV6_ENABLED: 'false',
            CONNECTION_TERMINATION_DEADLINE: '1s',
          },
        },
      );
      let buf = '';
      child.stdout?.on('data', (d: Buffer) => {
        buf += d.toString();
        let i = buf.indexOf('\n');
        while (i >= 0) {
          const line = buf.slice(0, i);
          buf = buf.slice(i + 1);
          try {
            p.logs.push(JSON.parse(line));
          } catch {
            p.logs.push({ msg: line });
          }
          i = buf.indexOf('\n');
        }
      });
      child.stderr?.on('data', (d: Buffer) => p.logs.push({ level: 'stderr', msg: d.toString() }));
      p.ztunnel = child;
    }
    for (const p of Object.values(pods)) {
      if (!p.mesh) continue;
      const deadline = Date.now() + 30_000;
      for (;;) {
        const r = await p.pod
          .exec([
            'curl',
            '-s',
            '-o',
            '/dev/null',
            '-w',
            '%{http_code}',
            'http://127.0.0.1:15021/healthz/ready',
          ])
          .catch(() => ({ stdout: '' }));
        if (r.stdout === '200') break;
        if (Date.now() > deadline)
          throw new Error(`${p.name}'s ztunnel is not ready: ${JSON.stringify(p.logs.slice(-5))}`);
        await new Promise((res) => setTimeout(res, 100));
      }
    }
    return {
      lab,
      pods,
      file,
      yaml,
      close: async () => {
        for (const p of Object.values(pods)) p.ztunnel?.kill('SIGTERM');
        await Promise.all(
          Object.values(pods).map((p) =>
            p.ztunnel && p.ztunnel.exitCode === null
              ? new Promise((r) => p.ztunnel!.once('exit', r))
              : undefined,
          ),
        );
        await lab.destroy();
      },
    };
  } catch (err) {
    await lab.destroy();
    throw err;
  }
}

export const ALLOW_CLIENT1 = `policies:
- name: allow-client1
  namespace: default
  scope: WorkloadSelector
  action: Allow
  dryRun: false
  rules:
  - - - principals: [!Exact cluster.local/ns/default/sa/client1]
${STATIC_STRICT_YAML}`;
