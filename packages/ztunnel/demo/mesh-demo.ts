/**
 * `pnpm demo`: a small ambient mesh on one machine, without root. One embedded CA, three
 * workloads (sleep, notsleep, httpbin) each with its own dedicated-mode ztunnel on its own
 * loopback address, an HTTP server behind httpbin, and clients using ztunnel's SOCKS5 port.
 *
 *   pnpm demo           run the story and exit (0 when every step behaved as expected)
 *   pnpm demo --keep    keep the mesh running and print commands to explore it
 *   pnpm demo --netns   (root) every workload in its own network namespace, real capture
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import { type AddressInfo, createServer as createTcpServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { resolveConfig, Ztunnel } from '../src/index.js';
import { createLogger } from '../src/logging.js';
import { httpGet, loopbackNodeEnv, plainGet, waitUntilReady } from '../src/testing/index.js';
import { netnsDemo } from './netns-demo.js';
import {
  bold,
  cyan,
  dim,
  indent,
  metricsExcerpt,
  STATIC_STRICT_YAML,
  Transcript,
} from './transcript.js';

const keep = process.argv.includes('--keep');
const t = new Transcript();
const check = t.check.bind(t);
const heading = t.heading.bind(t);

async function freePort(): Promise<number> {
  const s = createTcpServer();
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
  const { port } = s.address() as AddressInfo;
  await new Promise((r) => s.close(r));
  return port;
}

const VIP = '10.96.0.4';
const meshYaml = (
  appPort: number,
  extra = '',
) => `# The mesh: three workloads in their own identities, one service.
workloads:
- uid: demo//Pod/default/sleep
  name: sleep
  namespace: default
  serviceAccount: sleep
  trustDomain: cluster.local
  workloadIps: ["127.0.0.2"]
  protocol: HBONE
  canonicalName: sleep
- uid: demo//Pod/default/notsleep
  name: notsleep
  namespace: default
  serviceAccount: notsleep
  trustDomain: cluster.local
  workloadIps: ["127.0.0.3"]
  protocol: HBONE
  canonicalName: notsleep
- uid: demo//Pod/default/httpbin
  name: httpbin
  namespace: default
  serviceAccount: httpbin
  trustDomain: cluster.local
  workloadIps: ["127.0.0.4"]
  protocol: HBONE
  canonicalName: httpbin
  canonicalRevision: v1
  services:
    "default/httpbin.default.svc.cluster.local":
      80: ${appPort}${extra ? '\n  authorizationPolicies: [default/httpbin-allow-sleep, istio-system/istio_converted_static_strict]' : ''}
services:
- name: httpbin
  namespace: default
  hostname: httpbin.default.svc.cluster.local
  vips: ["/${VIP}"]
  ports: {80: ${appPort}}
${extra}`;

const POLICY = `policies:
# AuthorizationPolicy httpbin-allow-sleep (L4): only sleep's identity may connect to httpbin.
- name: httpbin-allow-sleep
  namespace: default
  scope: WorkloadSelector
  action: Allow
  dryRun: false
  rules:
  - - - principals: [!Exact cluster.local/ns/default/sa/sleep]
# PeerAuthentication STRICT, as istiod publishes it: deny anything without a peer identity.
${STATIC_STRICT_YAML}`;

interface Node {
  name: string;
  ip: string;
  zt: Ztunnel;
  logs: Record<string, unknown>[];
}

async function main(): Promise<number> {
  const dir = mkdtempSync(join(tmpdir(), 'mesh-demo-'));
  const caDir = join(dir, 'cacerts');
  const file = join(dir, 'mesh.yaml');
  const hbonePort = await freePort();

  console.log(
    bold('mesh demo: Istio ambient mode (ztunnel) in TypeScript, on loopback, without root'),
  );
  console.log(dim(`  working directory ${dir}`));

  const app: Server = createServer((req, res) => {
    const body = `${JSON.stringify({ service: 'httpbin', path: req.url })}\n`;
    res.writeHead(200, {
      'content-type': 'application/json',
      'content-length': Buffer.byteLength(body),
    });
    res.end(body);
  });
  await new Promise<void>((r) => app.listen(0, '127.0.0.4', r));
  const appPort = (app.address() as AddressInfo).port;
  writeFileSync(file, meshYaml(appPort));

  heading(1, 'Start one ztunnel per workload (dedicated mode), sharing an embedded CA');
  const nodes: Node[] = [];
  for (const [name, ip] of [
    ['httpbin', '127.0.0.4'],
    ['sleep', '127.0.0.2'],
    ['notsleep', '127.0.0.3'],
  ] as const) {
    const logs: Record<string, unknown>[] = [];
    const sink = new Writable({
      write(chunk: Buffer, _e, cb) {
        for (const l of chunk.toString().split('\n')) if (l) logs.push(JSON.parse(l));
        cb();
      },
    });
    const config = resolveConfig({
      env: {
        ...loopbackNodeEnv({
          ip,
          workload: `default/${name}/${name}`,
          localXdsPath: file,
          caDir,
          hbonePort,
        }),
        CONNECTION_TERMINATION_DEADLINE: '1s',
      },
    });
    const zt = await Ztunnel.start({
      config,
      logger: createLogger({ level: 'info', format: 'json', destination: sink }),
    });
    nodes.push({ name, ip, zt, logs });
  }
  const [httpbin, sleep, notsleep] = nodes as [Node, Node, Node];
  for (const n of nodes) {
    await waitUntilReady(n.zt);
    const a = n.zt.addresses;
    console.log(
      `  ${bold(n.name.padEnd(9))} ${n.ip}  HBONE :${a.inbound?.port}  SOCKS5 :${a.socks5?.port}  plaintext :${a.inboundPlaintext?.port}  admin :${a.admin.port}  ${dim(n.zt.proxy?.context.identity.toString() ?? '')}`,
    );
  }
  check(
    'three ztunnels ready',
    nodes.every((n) => n.zt.readiness.ready),
  );
  console.log(
    dim(
      `  httpbin app on 127.0.0.4:${appPort}, service httpbin.default.svc.cluster.local VIP ${VIP}:80`,
    ),
  );

  const socks = (n: Node) => ({ host: n.ip, port: n.zt.addresses.socks5!.port });
  const target = { host: VIP, port: 80 };
  const lastAccess = (n: Node, pred: (l: Record<string, unknown>) => boolean) =>
    [...n.logs].reverse().find((l) => l.component === 'access' && pred(l));
  const settle = () => new Promise((r) => setTimeout(r, 100));

  heading(2, `sleep → httpbin (${VIP}:80) through the mesh`);
  console.log(
    dim(
      `  client → sleep's ztunnel (SOCKS5) → HBONE (mTLS + HTTP/2 CONNECT) → httpbin's ztunnel → app`,
    ),
  );
  try {
    const body = await httpGet(socks(sleep), target, '/get');
    await settle();
    const inbound = lastAccess(
      httpbin,
      (l) => l.direction === 'inbound' && l.msg === 'connection complete',
    );
    console.log(indent(`response: ${body.trim()}`));
    console.log(indent(`source identity      ${cyan(String(inbound?.['src.identity']))}`));
    console.log(indent(`destination identity ${cyan(String(inbound?.['dst.identity']))}`));
    check(
      'sleep reaches httpbin over HBONE with both SPIFFE identities',
      inbound?.['src.identity'] === 'spiffe://cluster.local/ns/default/sa/sleep' &&
        inbound['dst.identity'] === 'spiffe://cluster.local/ns/default/sa/httpbin',
    );
  } catch (err) {
    check('sleep reaches httpbin over HBONE', false, (err as Error).message);
  }
  try {
    await httpGet(socks(notsleep), target, '/get');
    check('notsleep reaches httpbin too (no policy yet)', true);
  } catch (err) {
    check('notsleep reaches httpbin too (no policy yet)', false, (err as Error).message);
  }

  heading(
    3,
    'Add an L4 AuthorizationPolicy and PeerAuthentication STRICT (appended to the local config)',
  );
  console.log(indent(POLICY, '  │ '));
  writeFileSync(file, meshYaml(appPort, POLICY));
  for (let i = 0; i < 100 && httpbin.zt.store.policies.length < 2; i++)
    await new Promise((r) => setTimeout(r, 50));
  check("httpbin's ztunnel reloaded the file", httpbin.zt.store.policies.length === 2);

  try {
    await httpGet(socks(notsleep), target, '/get');
    check('notsleep is refused', false, 'the request went through');
  } catch (err) {
    await settle();
    const denied = lastAccess(httpbin, (l) => String(l.error ?? '').includes('policy rejection'));
    console.log(indent(`notsleep's client sees: ${(err as Error).message}`));
    console.log(
      indent(`httpbin's ztunnel says: ${denied?.error ?? '?'} (HTTP/2 CONNECT answered 401)`),
    );
    check('notsleep is refused by the policy', denied !== undefined);
  }
  try {
    await httpGet(socks(sleep), target, '/get');
    check('sleep is still allowed', true);
  } catch (err) {
    check('sleep is still allowed', false, (err as Error).message);
  }

  heading(4, 'A plaintext (non-HBONE) connection to httpbin under STRICT');
  const plain = httpbin.zt.addresses.inboundPlaintext!;
  try {
    await plainGet(plain.address, plain.port);
    check('plaintext refused', false, 'plaintext got through');
  } catch (err) {
    await settle();
    const denied = lastAccess(httpbin, (l) =>
      String(l.error ?? '').includes('istio_converted_static_strict'),
    );
    console.log(
      indent(
        `client connects to httpbin's inbound plaintext port ${plain.address}:${plain.port}: ${(err as Error).message}`,
      ),
    );
    console.log(indent(`httpbin's ztunnel says: ${denied?.error ?? '?'}`));
    check('plaintext refused: no peer identity under STRICT', denied !== undefined);
  }

  heading(5, "Telemetry: httpbin's /metrics (excerpt) and one access-log line");
  const stats = httpbin.zt.addresses.stats;
  const metrics = await (await fetch(`http://${stats.address}:${stats.port}/metrics`)).text();
  const excerpt = metricsExcerpt(metrics);
  console.log(indent(excerpt, '  │ '));
  check(
    'metrics report connections with reporter="destination" and both principals',
    /reporter="destination"/.test(metrics) &&
      /source_principal="spiffe:\/\/cluster.local\/ns\/default\/sa\/sleep"/.test(metrics),
  );
  const line = lastAccess(httpbin, (l) => l.msg === 'connection complete');
  console.log(indent(JSON.stringify(line), '  │ '));
  check('one JSON access-log line per connection', line !== undefined);

  const code = t.summary();

  const stop = async () => {
    await Promise.all(nodes.map((n) => n.zt.close()));
    app.close();
    rmSync(dir, { recursive: true, force: true });
  };
  if (!keep) {
    await stop();
    return code;
  }
  const a = (n: Node) => n.zt.addresses;
  console.log(`\n${bold('The mesh keeps running (Ctrl-C to stop). Try:')}
  curl --socks5 ${sleep.ip}:${a(sleep).socks5?.port} http://${VIP}/get                 ${dim('# sleep → httpbin: allowed')}
  curl --socks5 ${notsleep.ip}:${a(notsleep).socks5?.port} http://${VIP}/get                 ${dim('# notsleep → httpbin: refused')}
  curl --socks5-hostname ${sleep.ip}:${a(sleep).socks5?.port} http://httpbin.default.svc.cluster.local/get
  curl http://${a(httpbin).admin.address}:${a(httpbin).admin.port}/config_dump           ${dim("# httpbin ztunnel's state and certificates")}
  curl http://${a(httpbin).stats.address}:${a(httpbin).stats.port}/metrics
  curl http://${a(httpbin).readiness.address}:${a(httpbin).readiness.port}/healthz/ready
  curl -X POST 'http://${a(httpbin).admin.address}:${a(httpbin).admin.port}/logging?level=debug'
  ${dim(`edit ${file} (policies are re-read on save)`)}`);
  await new Promise<void>((resolve) => {
    process.once('SIGINT', resolve);
    process.once('SIGTERM', resolve);
  });
  await stop();
  return 0;
}

process.exitCode = process.argv.includes('--netns') ? await netnsDemo(keep) : await main();
