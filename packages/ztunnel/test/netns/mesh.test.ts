/**
 * End-to-end proof of the ztunnel in real network namespaces with real transparent capture.
 *
 * Topology. The current ztunnel runs in dedicated mode only (one proxy instance per workload,
 * PROXY_MODE=dedicated), so every mesh pod runs its own ztunnel process inside its own network
 * namespace, as Istio's dedicated mode does, under the in-pod rule set of @mesh/redirect
 * (spec §8.4: OUTPUT → 15001, PREROUTING → 15006 except 15008, marks 0x539 / 0x111) with
 * PACKET_MARK=1337 on the proxy's sockets. Pods are netns + veth from @mesh/redirect/testing,
 * routed through one `node` namespace; "node A" (sleep, notsleep, late) and "node B" (echo-a,
 * echo-b, outside) are address groups on it, since per-node ztunnels do not exist in
 * dedicated mode and the kit gives every lab the same pod subnets.
 *
 *   sleep    10.200.1.2  client, allowed            ─┐
 *   notsleep 10.200.2.2  client, denied by policy    │  node netns (router)
 *   late     10.200.3.2  client for readiness/drain  ├─ 10.250.0.1: fake xDS + Istio CA,
 *   echo-a   10.200.4.2  server pod (VIP endpoint)   │  relayed to this process's loopback
 *   echo-b   10.200.5.2  server pod (VIP endpoint)   │
 *   outside  10.200.6.2  no ztunnel, not in the mesh ┘
 *
 * The test process plays every app and client through sockets created inside the pods'
 * namespaces, so clients simply connect to the service address and the kernel captures them.
 * Control-plane traffic (10.250.0.1) bypasses capture, as it would leave from the node's
 * namespace in shared mode.
 */
import { createHash, randomBytes } from 'node:crypto';
import { rmSync, writeFileSync } from 'node:fs';
import type { Server, Socket } from 'node:net';
import { join } from 'node:path';
import { applyRedirect } from '@mesh/redirect';
import { createLab, type Lab, namespaceSupport, type Pod } from '@mesh/redirect/testing';
import { IstioCaServer, LocalCa } from '@mesh/spiffe';
import { authorizationType } from '@mesh/xds-client';
import { FakeControlPlane } from '@mesh/xds-client/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { tmp } from '../helpers/mesh.js';
import {
  bypassCapture,
  forwardIntoNetns,
  podConnect,
  podExchange,
  podGet,
  podServer,
  readAll,
  spawnZtunnel,
  waitFor,
  type ZtunnelProcess,
} from './helpers/pods.js';

const support = namespaceSupport();
if (!support.ok) console.warn(`skipping the ztunnel netns end-to-end tests: ${support.reason}`);

const CP = '10.250.0.1';
const VIP = '10.96.0.10';
const GREET = 8080;
const SHA = 9000;
const TOKEN = 'ztunnel-e2e-token';

const meshConfig = (ip: Record<string, string>) => `
workloads:
- { uid: k//Pod/default/sleep, name: sleep, namespace: default, serviceAccount: sleep, trustDomain: cluster.local,
    workloadIps: ["${ip.sleep}"], protocol: HBONE, canonicalName: sleep }
- { uid: k//Pod/default/notsleep, name: notsleep, namespace: default, serviceAccount: notsleep, trustDomain: cluster.local,
    workloadIps: ["${ip.notsleep}"], protocol: HBONE, canonicalName: notsleep }
- { uid: k//Pod/default/late, name: late, namespace: default, serviceAccount: late, trustDomain: cluster.local,
    workloadIps: ["${ip.late}"], protocol: HBONE, canonicalName: late }
${['echo-a', 'echo-b']
  .map(
    (
      n,
    ) => `- { uid: k//Pod/echo/${n}, name: ${n}, namespace: echo, serviceAccount: echo, trustDomain: cluster.local,
    workloadIps: ["${ip[n]}"], protocol: HBONE, canonicalName: echo, canonicalRevision: v1,
    services: { "echo/echo.echo.svc.cluster.local": { 80: ${GREET}, 90: ${SHA} } },
    authorizationPolicies: ["echo/allow-clients", "istio-system/istio_converted_static_strict"] }`,
  )
  .join('\n')}
services:
- { name: echo, namespace: echo, hostname: echo.echo.svc.cluster.local, vips: ["/${VIP}"], ports: { 80: ${GREET}, 90: ${SHA} } }
policies:
- name: allow-clients
  namespace: echo
  scope: WorkloadSelector
  action: Allow
  dryRun: false
  rules: [[[ { principals: [!Exact cluster.local/ns/default/sa/sleep, !Exact cluster.local/ns/default/sa/late] } ]]]
- name: istio_converted_static_strict
  namespace: istio-system
  scope: WorkloadSelector
  action: Deny
  dryRun: false
  rules: [[[ { notPrincipals: [!Presence ] } ]]]
`;

interface MeshPod {
  pod: Pod;
  zt?: ZtunnelProcess;
}

let lab: Lab | undefined;
let cp: FakeControlPlane | undefined;
let ca: IstioCaServer | undefined;
const servers: Server[] = [];
const pods = {} as Record<'sleep' | 'notsleep' | 'late' | 'echo-a' | 'echo-b' | 'outside', MeshPod>;
let baseEnv: Record<string, string> = {};
let caPort = 0;
let dir: string | undefined;

/** The greeting app: names itself and the source address it sees, then echoes until FIN. */
function greeter(name: string) {
  return (s: Socket) => {
    s.write(`${name} sees ${s.remoteAddress}\n`);
    s.pipe(s);
  };
}

/** Hashes everything it receives and answers with the digest at FIN. */
function hasher(s: Socket) {
  const h = createHash('sha256');
  s.on('data', (d: Buffer) => h.update(d));
  s.on('end', () => s.end(`sha256 ${h.digest('hex')}\n`));
}

const admin = (p: MeshPod, port: number, path: string) => podGet(p.pod, '127.0.0.1', port, path);
const ready = (p: MeshPod) => admin(p, 15021, '/healthz/ready');
const accessLogs = (name: keyof typeof pods) =>
  (pods[name].zt?.logs ?? []).filter((l) => l.component === 'access');

function ztEnv(workload: string, extra: Record<string, string> = {}): Record<string, string> {
  return { ...baseEnv, PROXY_WORKLOAD_INFO: workload, ...extra };
}

async function capture(pod: Pod): Promise<void> {
  await applyRedirect({ netns: pod.path, mode: 'inpod', ipv6: false });
  bypassCapture(pod, `${CP}/32`);
}

describe.skipIf(!support.ok)('ztunnel in network namespaces with transparent capture', () => {
  beforeAll(async () => {
    lab = await createLab({ prefix: 'zte2e-', ipv6: false });
    for (const name of ['sleep', 'notsleep', 'late', 'echo-a', 'echo-b', 'outside'] as const) {
      pods[name] = { pod: await lab.addPod({ name: name.replace('-', '') }) };
    }
    await lab.node.addAddress(`${CP}/32`);
    const ip = Object.fromEntries(Object.entries(pods).map(([k, v]) => [k, v.pod.ip4]));

    cp = await FakeControlPlane.start();
    ca = new IstioCaServer({
      ca: LocalCa.create({ trustDomain: 'cluster.local' }),
      tokens: { [TOKEN]: { name: 'istio-system/ztunnel' } },
      ipAddresses: [CP],
    });
    caPort = await ca.listen({ host: '127.0.0.1' });
    servers.push(await forwardIntoNetns(lab.node, CP, 15010, cp.port));
    servers.push(await forwardIntoNetns(lab.node, CP, 15012, caPort));

    dir = tmp('zt-netns-');
    const file = join(dir, 'mesh.yaml');
    writeFileSync(file, meshConfig(ip));
    baseEnv = {
      PROXY_MODE: 'dedicated',
      LOCAL_XDS_PATH: file,
      XDS_ADDRESS: `http://${CP}:15010`,
      CA_ADDRESS: `https://${CP}:15012`,
      CA_ROOT_CA: ca.rootCert,
      AUTH_TOKEN: TOKEN,
      SECRET_TTL: '4s',
      PACKET_MARK: '1337',
      CONNECTION_TERMINATION_DEADLINE: '10s',
      ZTUNNEL_HBONE_PORT: '15008',
      ZTUNNEL_INBOUND_ADDRESS: '0.0.0.0:15008',
      ZTUNNEL_INBOUND_PLAINTEXT_ADDRESS: '0.0.0.0:15006',
      ZTUNNEL_OUTBOUND_ADDRESS: '0.0.0.0:15001',
      ZTUNNEL_ADMIN_ADDRESS: '127.0.0.1:15000',
      ZTUNNEL_STATS_ADDRESS: '127.0.0.1:15020',
      ZTUNNEL_READINESS_ADDRESS: '127.0.0.1:15021',
      LOG_LEVEL: 'info',
      LOG_FORMAT: 'json',
    };

    for (const name of ['echo-a', 'echo-b'] as const) {
      servers.push(await podServer(pods[name].pod, GREET, greeter(name)));
      servers.push(await podServer(pods[name].pod, SHA, hasher));
    }
    servers.push(await podServer(pods.outside.pod, 7000, greeter('outside')));
    // late has no policy: plaintext to its apps is allowed (the 15006 tests).
    servers.push(await podServer(pods.late.pod, GREET, greeter('late')));
    servers.push(await podServer(pods.late.pod, SHA, hasher));
    for (const name of ['sleep', 'notsleep', 'late', 'echo-a', 'echo-b'] as const)
      await capture(pods[name].pod);

    const started = await Promise.all(
      (
        [
          ['sleep', 'default/sleep/sleep'],
          ['notsleep', 'default/notsleep/notsleep'],
          ['echo-a', 'echo/echo-a/echo'],
          ['echo-b', 'echo/echo-b/echo'],
        ] as const
      ).map(async ([name, workload]) => {
        pods[name].zt = await spawnZtunnel(pods[name].pod, ztEnv(workload));
        await waitFor(
          async () => (await ready(pods[name])).status === 200,
          `${name} ready`,
          30_000,
        );
        return name;
      }),
    );
    expect(started).toHaveLength(4);
  }, 90_000);

  afterAll(async () => {
    for (const p of Object.values(pods)) p.zt?.child.kill('SIGKILL');
    for (const s of servers) s.close();
    await cp?.close();
    await ca?.close();
    await lab?.destroy();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it('carries an allowed client to the service VIP over HBONE and closes a denied one after RBAC', async () => {
    const allowed = await podExchange(pods.sleep.pod, VIP, 80, 'hello');
    expect(allowed.end).toBe('fin');
    expect(allowed.data.toString()).toMatch(/^echo-[ab] sees 10\.200\.\d\.2\nhello$/);
    // The client only dialled the VIP: its ztunnel captured it and tunnelled it over mTLS.
    const out = await waitFor(
      () =>
        accessLogs('sleep').find(
          (l) => l.direction === 'outbound' && l['dst.service'] === 'echo.echo.svc.cluster.local',
        ),
      "sleep's outbound access log",
    );
    expect(out).toMatchObject({
      'src.identity': 'spiffe://cluster.local/ns/default/sa/sleep',
      'dst.identity': 'spiffe://cluster.local/ns/echo/sa/echo',
      bytes_sent: 5,
    });
    expect(String(out['dst.addr'])).toMatch(/^10\.200\.[45]\.2:15008$/);

    const denied = await podExchange(pods.notsleep.pod, VIP, 80, 'hello');
    expect(denied.data.length).toBe(0);
    const refused = await waitFor(
      () => accessLogs('notsleep').find((l) => l.direction === 'outbound' && l.error !== undefined),
      "notsleep's failed outbound access log",
    );
    expect(refused.error).toMatch(/^CONNECT 10\.200\.[45]\.2:8080 answered 401$/);
    const rejected = await waitFor(
      () =>
        [...accessLogs('echo-a'), ...accessLogs('echo-b')].find(
          (l) => l.direction === 'inbound' && l['src.workload'] === 'notsleep',
        ),
      'the rejection in the serving ztunnel',
    );
    expect(rejected).toMatchObject({
      'src.identity': 'spiffe://cluster.local/ns/default/sa/notsleep',
      error: 'connection closed due to policy rejection: allow policies exist, but none allowed',
    });
    // dst.addr is the app the tunnel was for (as on success), not the pod's 15008.
    expect(rejected['dst.addr']).toBe(
      String(refused.error).replace(/^CONNECT (\S+) answered 401$/, '$1'),
    );
  });

  it("preserves the client pod's IP towards the app over HBONE, and the app's replies find their way back", async () => {
    // echo-a's ztunnel dials its app from sleep's address (IP_TRANSPARENT + IP_FREEBIND, mark
    // 0x539); the reply to that foreign address comes back to it through connmark 0x111 and
    // routing table 100 of the in-pod rule set. Without preservation the app sees 10.200.4.2.
    const r = await podExchange(pods.sleep.pod, pods['echo-a'].pod.ip4, GREET, 'hello');
    expect(r).toEqual({
      data: Buffer.from(`echo-a sees ${pods.sleep.pod.ip4}\nhello`),
      end: 'fin',
    });
    const log = await waitFor(
      () =>
        accessLogs('echo-a').find(
          (l) =>
            l.direction === 'inbound' &&
            l['src.workload'] === 'sleep' &&
            l['dst.addr'] === `${pods['echo-a'].pod.ip4}:${GREET}`,
        ),
      "echo-a's inbound access log",
    );
    expect(log.error).toBeUndefined();
  });

  it('refuses plaintext to a captured pod under STRICT', async () => {
    const plain = await podExchange(pods.outside.pod, pods['echo-a'].pod.ip4, GREET, 'hello');
    expect(plain.data.length).toBe(0);
    // Captured on 15006 (not refused by the kernel): the proxy logged the STRICT denial.
    const log = await waitFor(
      () =>
        accessLogs('echo-a').find((l) =>
          String(l['src.addr']).startsWith(`${pods.outside.pod.ip4}:`),
        ),
      'the STRICT rejection in the echo-a log',
    );
    expect(log['src.identity']).toBeUndefined();
    expect(log.error).toMatch(
      /^connection closed due to policy rejection: .*istio_converted_static_strict/,
    );
    expect(log['dst.addr']).toBe(`${pods['echo-a'].pod.ip4}:${GREET}`);
  });

  it('load-balances the service VIP over both endpoint pods', async () => {
    const seen = new Set<string>();
    for (let i = 0; i < 16; i++) {
      const r = await podExchange(pods.sleep.pod, VIP, 80);
      expect(r.end).toBe('fin');
      seen.add(r.data.toString().split(' ')[0] as string);
    }
    expect([...seen].sort()).toEqual(['echo-a', 'echo-b']);
  });

  it('passes a connection to a non-mesh destination through as plain TCP', async () => {
    const r = await podExchange(pods.sleep.pod, pods.outside.pod.ip4, 7000, 'plain');
    expect(r.end).toBe('fin');
    // No tunnel: the outside app sees the sleep pod's own address and the bytes as sent.
    expect(r.data.toString()).toBe(`outside sees ${pods.sleep.pod.ip4}\nplain`);
  });

  it('carries 64 MiB through two ztunnels byte for byte', async () => {
    const block = randomBytes(1024 * 1024);
    const h = createHash('sha256');
    const s = await podConnect(pods.sleep.pod, pods['echo-a'].pod.ip4, SHA);
    const reply = readAll(s);
    for (let i = 0; i < 64; i++) {
      const piece = Buffer.concat([block.subarray(i), block.subarray(0, i)]);
      h.update(piece);
      if (!s.write(piece)) await new Promise((r) => s.once('drain', r));
    }
    s.end();
    const r = await reply;
    expect(r.end).toBe('fin');
    expect(r.data.toString()).toBe(`sha256 ${h.digest('hex')}\n`);
  }, 60_000);

  it('applies a policy pushed over xDS without restart, closing an open inbound connection it now denies', async () => {
    const open = await podConnect(pods.sleep.pod, pods['echo-a'].pod.ip4, GREET);
    const openDone = readAll(open);
    let got = '';
    open.on('data', (d: Buffer) => {
      got += d.toString();
    });
    open.write('before\n');
    await waitFor(() => got.endsWith('before\n'), 'the echo through the open connection');
    const pid = pods['echo-a'].zt!.child.pid;

    cp!.set(authorizationType, {
      name: 'deny-all',
      namespace: 'echo',
      scope: 'NAMESPACE',
      action: 'DENY',
      dryRun: false,
      rules: [{ clauses: [] }],
    });
    const closed = await openDone;
    expect(closed.data.toString()).toBe(`echo-a sees ${pods.sleep.pod.ip4}\nbefore\n`);
    const fresh = await podExchange(pods.sleep.pod, pods['echo-a'].pod.ip4, GREET, 'x');
    expect(fresh.data.length).toBe(0);
    const dump = JSON.parse((await admin(pods['echo-a'], 15000, '/config_dump')).text) as {
      policies: { name: string }[];
    };
    expect(dump.policies.map((p) => p.name)).toContain('deny-all');

    cp!.remove(authorizationType, ['echo/deny-all']);
    await waitFor(
      async () =>
        (await podExchange(pods.sleep.pod, pods['echo-a'].pod.ip4, GREET, 'x')).data.length > 0,
      'connections allowed again after the policy is removed',
    );
    expect(pods['echo-a'].zt!.child.pid).toBe(pid);
    expect(pods['echo-a'].zt!.child.exitCode).toBeNull();
  }, 30_000);

  it('rotates certificates from the gRPC CA under load without losing a tunnel', async () => {
    const serial = async () => {
      const d = JSON.parse((await admin(pods['echo-a'], 15000, '/config_dump')).text) as {
        certificates: { certChain: { serialNumber: string }[] }[];
      };
      return d.certificates[0]?.certChain[0]?.serialNumber;
    };
    const first = await serial();
    expect(first).toBeDefined();
    const long = await podConnect(pods.sleep.pod, pods['echo-a'].pod.ip4, SHA);
    const longReply = readAll(long);
    const h = createHash('sha256');
    const results: string[] = [];
    const ping = `sha256 ${createHash('sha256').update('ping').digest('hex')}\n`;
    const deadline = Date.now() + 6000;
    while (Date.now() < deadline) {
      const piece = randomBytes(16384);
      h.update(piece);
      long.write(piece);
      results.push(
        (await podExchange(pods.sleep.pod, pods['echo-a'].pod.ip4, SHA, 'ping')).data.toString(),
      );
      await new Promise((r) => setTimeout(r, 150));
    }
    long.end();
    const r = await longReply;
    expect(results.length).toBeGreaterThan(10);
    expect(results.filter((x) => x !== ping)).toEqual([]);
    expect(r.data.toString()).toBe(`sha256 ${h.digest('hex')}\n`);
    expect(await serial()).not.toBe(first);
  }, 30_000);

  it('reports the traffic in /metrics with workload labels and reporter, and the state in /config_dump', async () => {
    const labelsOf = (text: string, metric: string) =>
      text
        .split('\n')
        .filter((l) => l.startsWith(`${metric}{`))
        .map((l) => {
          const m = /\{(.*)\} (\S+)$/.exec(l)!;
          const labels = Object.fromEntries(
            [...(m[1] ?? '').matchAll(/(\w+)="([^"]*)"/g)].map((x) => [x[1], x[2]]),
          ) as Record<string, string>;
          return { labels, value: Number(m[2]) };
        });
    const dst = labelsOf(
      (await admin(pods['echo-a'], 15020, '/metrics')).text,
      'istio_tcp_connections_opened_total',
    );
    const fromSleep = dst.find(
      (m) => m.labels.reporter === 'destination' && m.labels.source_workload === 'sleep',
    );
    expect(fromSleep?.labels).toMatchObject({
      source_principal: 'spiffe://cluster.local/ns/default/sa/sleep',
      source_workload_namespace: 'default',
      destination_workload: 'echo-a',
      destination_workload_namespace: 'echo',
      destination_principal: 'spiffe://cluster.local/ns/echo/sa/echo',
      connection_security_policy: 'mutual_tls',
    });
    expect(fromSleep!.value).toBeGreaterThan(0);
    const src = labelsOf(
      (await admin(pods.sleep, 15020, '/metrics')).text,
      'istio_tcp_connections_opened_total',
    );
    expect(
      src.find(
        (m) =>
          m.labels.reporter === 'source' &&
          m.labels.destination_service === 'echo.echo.svc.cluster.local' &&
          m.labels.destination_workload === 'echo-b',
      )?.labels,
    ).toMatchObject({
      source_workload: 'sleep',
      source_principal: 'spiffe://cluster.local/ns/default/sa/sleep',
    });

    const dump = JSON.parse((await admin(pods['echo-a'], 15000, '/config_dump')).text) as {
      workloads: { name: string; workloadIps: string[] }[];
      services: { hostname: string }[];
      policies: { name: string }[];
      certificates: { identity: string; state: string }[];
    };
    expect(dump.workloads.map((w) => w.name).sort()).toEqual([
      'echo-a',
      'echo-b',
      'late',
      'notsleep',
      'sleep',
    ]);
    expect(dump.workloads.find((w) => w.name === 'echo-a')?.workloadIps).toEqual([
      pods['echo-a'].pod.ip4,
    ]);
    expect(dump.services.map((s) => s.hostname)).toEqual(['echo.echo.svc.cluster.local']);
    expect(dump.policies.map((p) => p.name).sort()).toEqual([
      'allow-clients',
      'istio_converted_static_strict',
    ]);
    expect(dump.certificates[0]).toMatchObject({
      identity: 'spiffe://cluster.local/ns/echo/sa/echo',
      state: 'Available',
    });
  });

  describe('lifecycle of the late pod', () => {
    const late = () => pods.late;
    let gate: Server | undefined;

    it('is not ready while the CA is unreachable and becomes ready once the certificate arrives', async () => {
      // This ztunnel's CA address is relayed by a forwarder that is not listening yet.
      pods.late.zt = await spawnZtunnel(
        late().pod,
        ztEnv('default/late/late', { CA_ADDRESS: `https://${CP}:15013` }),
      );
      const notReady = await waitFor(async () => {
        const r = await ready(late());
        return r.status === 500 ? r : undefined;
      }, 'late not ready');
      expect(notReady.text).toContain('certificate spiffe://cluster.local/ns/default/sa/late');
      gate = await forwardIntoNetns(lab!.node, CP, 15013, caPort);
      servers.push(gate);
      const r = await waitFor(
        async () => {
          const x = await ready(late());
          return x.status === 200 ? x : undefined;
        },
        'late ready',
        25_000,
      );
      expect(r.status).toBe(200);
      const ok = await podExchange(late().pod, pods['echo-a'].pod.ip4, GREET, 'hi');
      expect(ok.data.toString()).toBe(`echo-a sees ${late().pod.ip4}\nhi`);
    }, 45_000);

    it('on SIGTERM turns not ready at once, refuses new connections, and lets open tunnels finish their transfer', async () => {
      expect(late().zt).toBeDefined();
      const zt = late().zt!;
      // One tunnel known to be established (the app greeted through it) and one accepted by
      // the proxy just before SIGTERM, whose tunnel may still be being set up.
      const established = await podConnect(late().pod, pods['echo-a'].pod.ip4, GREET);
      const echoed = readAll(established);
      await new Promise((r) => established.once('data', r));
      // Hold the second tunnel's setup: the node drops its SYNs to echo-b's 15008 until the
      // drain has begun, then the kernel's SYN retransmission completes it.
      const hold = [
        'FORWARD',
        '-d',
        pods['echo-b'].pod.ip4,
        '-p',
        'tcp',
        '--dport',
        '15008',
        '-j',
        'DROP',
      ];
      await lab!.node.exec(['iptables', '-I', ...hold]);
      const fresh = await podConnect(late().pod, pods['echo-b'].pod.ip4, SHA);
      const digest = readAll(fresh);
      await waitFor(async () => {
        const { stdout } = await late().pod.exec(['ss', '-Htn', 'state', 'syn-sent']);
        return stdout.includes(`${pods['echo-b'].pod.ip4}:15008`);
      }, 'the HBONE dial to echo-b in SYN-SENT');
      zt.child.kill('SIGTERM');
      const sent = (socket: Socket, hash: ReturnType<typeof createHash>, n: number) => {
        const piece = randomBytes(n);
        hash.update(piece);
        socket.write(piece);
      };
      const sentA = createHash('sha256');
      const sentB = createHash('sha256');
      sent(established, sentA, 1 << 20);
      sent(fresh, sentB, 1 << 20);
      await zt.waitForLog((l) => l.msg === 'draining', 'draining');
      expect((await ready(late())).status).toBe(500);
      // The outbound listener closes a moment after readiness fails; from then on the
      // captured connect is refused by the kernel.
      await waitFor(
        async () => (await podExchange(late().pod, VIP, 80, 'new')).end === 'ECONNREFUSED',
        'new connections refused',
      );

      // The established tunnel keeps flowing after SIGTERM and finishes first.
      for (let i = 0; i < 8; i++) {
        sent(established, sentA, 256 * 1024);
        await new Promise((res) => setTimeout(res, 100));
      }
      established.end();
      const a = await echoed;
      expect(a.end).toBe('fin');
      const greeting = `echo-a sees ${late().pod.ip4}\n`;
      expect(a.data.subarray(0, greeting.length).toString()).toBe(greeting);
      expect(createHash('sha256').update(a.data.subarray(greeting.length)).digest('hex')).toBe(
        sentA.digest('hex'),
      );

      // The second one, accepted before SIGTERM, is still being set up: the drain waits for it.
      expect(fresh.destroyed).toBe(false);
      await lab!.node.exec(['iptables', '-D', ...hold]);
      sent(fresh, sentB, 1 << 20);
      fresh.end();
      expect(await digest).toEqual({
        data: Buffer.from(`sha256 ${sentB.digest('hex')}\n`),
        end: 'fin',
      });
      expect(await zt.exited).toBe(0);
      expect(
        zt.logs.some((l) => l.msg === 'closed connections still open at the termination deadline'),
      ).toBe(false);
    }, 45_000);

    it("preserves a plaintext client's IP on 15006; on SIGTERM the drain waits for a dial to the app in progress and aborts one still pending at the deadline", async () => {
      // The previous test stopped late's ztunnel; start a fresh one.
      const zt = await spawnZtunnel(
        late().pod,
        ztEnv('default/late/late', { CONNECTION_TERMINATION_DEADLINE: '6s' }),
      );
      pods.late.zt = zt;
      await waitFor(async () => (await ready(late())).status === 200, 'late ready again', 30_000);
      const ip = late().pod.ip4;
      const hi = await podExchange(pods.outside.pod, ip, GREET, 'hi');
      expect(hi).toEqual({
        data: Buffer.from(`late sees ${pods.outside.pod.ip4}\nhi`),
        end: 'fin',
      });

      // Hold the proxy's dials to both apps: late drops the SYNs its ztunnel sends to them (the
      // captured client's own SYN arrives on PREROUTING and is not touched). The hold on SHA
      // is lifted once the drain has begun; the one on GREET outlives the deadline.
      const hold = (port: number) => [
        'OUTPUT',
        '-d',
        ip,
        '-p',
        'tcp',
        '--dport',
        String(port),
        '--tcp-flags',
        'SYN,ACK',
        'SYN',
        '-j',
        'DROP',
      ];
      await late().pod.exec(['iptables', '-I', ...hold(SHA)]);
      await late().pod.exec(['iptables', '-I', ...hold(GREET)]);
      const client = await podConnect(pods.outside.pod, ip, SHA);
      const digest = readAll(client);
      const stuck = await podConnect(pods.outside.pod, ip, GREET);
      const stuckDone = readAll(stuck);
      await waitFor(async () => {
        const { stdout } = await late().pod.exec(['ss', '-Htn', 'state', 'syn-sent']);
        return stdout.includes(`${ip}:${SHA}`) && stdout.includes(`${ip}:${GREET}`);
      }, 'both dials to the apps in SYN-SENT');
      zt.child.kill('SIGTERM');
      const hash = createHash('sha256');
      const send = (n: number) => {
        const piece = randomBytes(n);
        hash.update(piece);
        client.write(piece);
      };
      send(256 * 1024);
      await zt.waitForLog((l) => l.msg === 'draining', 'draining');
      // The kernel's SYN retransmission completes the first dial once its hold is gone.
      await late().pod.exec(['iptables', '-D', ...hold(SHA)]);
      send(256 * 1024);
      client.end();
      expect(await digest).toEqual({
        data: Buffer.from(`sha256 ${hash.digest('hex')}\n`),
        end: 'fin',
      });
      // The second never got its app: the deadline aborted the dial and closed the client.
      expect((await stuckDone).data.length).toBe(0);
      expect(await zt.exited).toBe(0);
      await late().pod.exec(['iptables', '-D', ...hold(GREET)]);
      expect(
        zt.logs.find((l) => l.msg === 'closed connections still open at the termination deadline'),
      ).toMatchObject({ connections: 1 });
      expect(
        zt.logs.find(
          (l) =>
            l.component === 'access' &&
            String(l['src.addr']).startsWith(`${pods.outside.pod.ip4}:`) &&
            l['dst.addr'] === `${ip}:${GREET}` &&
            l.error !== undefined,
        ),
      ).toMatchObject({ error: 'connection closed due to drain deadline' });
    }, 60_000);
  });
});
