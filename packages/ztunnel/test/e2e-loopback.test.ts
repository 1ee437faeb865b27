import { writeFileSync } from 'node:fs';
import type { Server } from 'node:http';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  curl,
  freePort,
  type MeshNode,
  startHttpbin,
  startNode,
  tmp,
  waitFor,
  waitReady,
} from './helpers/mesh.js';

// Three workloads on loopback addresses, each with its own dedicated-mode ztunnel, sharing one
// embedded CA directory: sleep (127.0.0.2), notsleep (127.0.0.3), httpbin (127.0.0.4).
const mesh = (appPort: number, policies = '') => `
workloads:
- { uid: c//Pod/default/sleep, name: sleep, namespace: default, serviceAccount: sleep, trustDomain: cluster.local,
    workloadIps: ["127.0.0.2"], protocol: HBONE, canonicalName: sleep }
- { uid: c//Pod/default/notsleep, name: notsleep, namespace: default, serviceAccount: notsleep, trustDomain: cluster.local,
    workloadIps: ["127.0.0.3"], protocol: HBONE }
- { uid: c//Pod/default/httpbin, name: httpbin, namespace: default, serviceAccount: httpbin, trustDomain: cluster.local,
    workloadIps: ["127.0.0.4"], protocol: HBONE, canonicalName: httpbin, canonicalRevision: v1,
    services: { "default/httpbin.default.svc.cluster.local": { 80: ${appPort} } } }
services:
- { name: httpbin, namespace: default, hostname: httpbin.default.svc.cluster.local, vips: ["/10.96.0.4"], ports: { 80: ${appPort} } }
${policies}
`;

const denyNotsleep = `
policies:
- name: allow-sleep
  namespace: default
  scope: WorkloadSelector
  action: Allow
  dryRun: false
  rules: [[[ { principals: [!Exact cluster.local/ns/default/sa/sleep] } ]]]
- name: istio_converted_static_strict
  namespace: istio-system
  scope: WorkloadSelector
  action: Deny
  dryRun: false
  rules: [[[ { notPrincipals: [!Presence ] } ]]]
`;

let sleep: MeshNode;
let notsleep: MeshNode;
let httpbin: MeshNode;
let app: { server: Server; port: number };
let file: string;

beforeAll(async () => {
  const dir = tmp('zt-e2e-');
  const caDir = join(dir, 'ca');
  const hbonePort = await freePort();
  app = await startHttpbin('127.0.0.4');
  file = join(dir, 'mesh.yaml');
  writeFileSync(file, mesh(app.port));
  const node = (ip: string, workload: string) =>
    startNode({ ip, workload, localXdsPath: file, caDir, hbonePort });
  httpbin = await node('127.0.0.4', 'default/httpbin/httpbin');
  sleep = await node('127.0.0.2', 'default/sleep/sleep');
  notsleep = await node('127.0.0.3', 'default/notsleep/notsleep');
  for (const n of [sleep, notsleep, httpbin]) await waitReady(n);
});

afterAll(async () => {
  await Promise.all([sleep, notsleep, httpbin].map((n) => n?.zt.close()));
  app?.server.close();
});

const socks = (n: MeshNode) => `${n.zt.addresses.socks5!.address}:${n.zt.addresses.socks5!.port}`;

describe('a three-workload mesh on loopback', () => {
  it('carries a request from sleep to the httpbin service VIP over HBONE', async () => {
    const r = await curl(['--socks5', socks(sleep), 'http://10.96.0.4/get']);
    expect(r.stderr).toBe('');
    // With source-IP preservation (best effort: on when the process may) the app sees sleep's
    // address; without it, httpbin's workload address its proxy connects from.
    const from = httpbin.zt.proxy!.context.origSrc.ipv4 ? '127.0.0.2' : '127.0.0.4';
    expect(JSON.parse(r.stdout)).toEqual({ path: '/get', from });
  });

  it('resolves mesh host names given to SOCKS5', async () => {
    const r = await curl([
      '--socks5-hostname',
      socks(sleep),
      'http://httpbin.default.svc.cluster.local/x',
    ]);
    expect(JSON.parse(r.stdout).path).toBe('/x');
  });

  it('records the tunnel in metrics and one access-log line on each side, with both identities', async () => {
    await curl(['--socks5', socks(sleep), 'http://10.96.0.4/metrics-check']);
    const s = httpbin.zt.addresses.stats;
    const body = await waitFor(async () => {
      const t = await (await fetch(`http://${s.address}:${s.port}/metrics`)).text();
      return t.includes('istio_tcp_connections_closed_total') ? t : undefined;
    }, 'closed connection metric');
    expect(body).toMatch(
      /istio_tcp_connections_opened_total\{reporter="destination",source_workload="sleep".*source_principal="spiffe:\/\/cluster.local\/ns\/default\/sa\/sleep".*destination_workload="httpbin".*destination_principal="spiffe:\/\/cluster.local\/ns\/default\/sa\/httpbin".*connection_security_policy="mutual_tls"/,
    );
    const line = await waitFor(
      () =>
        httpbin.logs.lines.find(
          (l) => l.msg === 'connection complete' && l.direction === 'inbound',
        ),
      'inbound access log',
    );
    expect(line).toMatchObject({
      component: 'access',
      'src.identity': 'spiffe://cluster.local/ns/default/sa/sleep',
      'dst.identity': 'spiffe://cluster.local/ns/default/sa/httpbin',
    });
    const out = await waitFor(
      () =>
        sleep.logs.lines.find((l) => l.msg === 'connection complete' && l.direction === 'outbound'),
      'outbound access log',
    );
    expect(out['dst.hbone_addr']).toBe(`127.0.0.4:${app.port}`);
  });

  it('lets a policy change refuse notsleep while sleep still passes', async () => {
    expect((await curl(['--socks5', socks(notsleep), 'http://10.96.0.4/before'])).code).toBe(0);
    writeFileSync(
      file,
      mesh(app.port, denyNotsleep).replace(
        'protocol: HBONE, canonicalName: httpbin,',
        'protocol: HBONE, canonicalName: httpbin, authorizationPolicies: [default/allow-sleep, istio-system/istio_converted_static_strict],',
      ),
    );
    await waitFor(() => httpbin.zt.store.policies.length === 2 || undefined, 'policy reload');
    const denied = await curl(['--socks5', socks(notsleep), 'http://10.96.0.4/after']);
    expect(denied.code).not.toBe(0);
    const ok = await curl(['--socks5', socks(sleep), 'http://10.96.0.4/after']);
    expect(JSON.parse(ok.stdout).path).toBe('/after');
    const log = await waitFor(
      () =>
        httpbin.logs.lines.find((l) =>
          String(l.error ?? '').includes('allow policies exist, but none allowed'),
        ),
      'deny log',
    );
    expect(log['src.identity']).toBe('spiffe://cluster.local/ns/default/sa/notsleep');
  });

  it('denies plaintext to httpbin under the STRICT policy', async () => {
    const p = httpbin.zt.addresses.inboundPlaintext!;
    const r = await curl([`http://${p.address}:${p.port}/plain`]);
    expect(r.code).not.toBe(0);
    await waitFor(
      () =>
        httpbin.logs.lines.find((l) =>
          String(l.error ?? '').includes(
            'explicitly denied by: istio-system/istio_converted_static_strict',
          ),
        ),
      'strict deny log',
    );
  });
});
