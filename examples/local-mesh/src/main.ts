// local-mesh: the mesh behind `pnpm demo`, built from mesh.yaml and one environment per
// ztunnel (src/mesh.ts). Runs the three checks the demo makes, then exits (or keeps running).
//
//   pnpm --filter @mesh/example-local-mesh start
//   pnpm --filter @mesh/example-local-mesh start -- --keep
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:http';
import { type AddressInfo, connect, createServer as createTcpServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { parseArgs } from 'node:util';
import { resolveConfig, Ztunnel } from '@mesh/ztunnel';
import { pino } from 'pino';
import { meshYaml, VIP, workloads, ztunnelEnv } from './mesh.js';
import { httpGetViaSocks } from './socks5.js';

const { values: args } = parseArgs({
  options: {
    keep: { type: 'boolean', default: false },
    // ztunnel's own ports (15008, 15001, ...) on each workload's address, or any free ones.
    'free-ports': { type: 'boolean', default: false },
  },
});

async function freePort(host: string): Promise<number> {
  const s = createTcpServer().listen(0, host);
  await new Promise((r) => s.once('listening', r));
  const { port } = s.address() as AddressInfo;
  await new Promise((r) => s.close(r));
  return port;
}

const httpbinIp = '127.0.20.4';
const appPort = args['free-ports'] ? await freePort(httpbinIp) : 8000;
const hbonePort = args['free-ports'] ? await freePort(httpbinIp) : 15008;
const dir = mkdtempSync(join(tmpdir(), 'local-mesh-'));
const localConfig = join(dir, 'mesh.yaml');
writeFileSync(localConfig, meshYaml(appPort));

// The application behind httpbin.
const app = createServer((req, res) =>
  res.end(`${JSON.stringify({ service: 'httpbin', path: req.url })}\n`),
);
await new Promise<void>((r) => app.listen(appPort, httpbinIp, r));

// One ztunnel per workload; each one's JSON logs are kept to show the access log.
interface MeshNode {
  name: string;
  ip: string;
  zt: Ztunnel;
  logs: Record<string, unknown>[];
}
const nodes: MeshNode[] = [];
for (const w of workloads) {
  const logs: Record<string, unknown>[] = [];
  const sink = new Writable({
    write(chunk: Buffer, _enc, done) {
      for (const line of chunk.toString().split('\n')) if (line) logs.push(JSON.parse(line));
      done();
    },
  });
  const env = ztunnelEnv(w, {
    localConfig,
    caDir: join(dir, 'cacerts'),
    hbonePort,
    fixedPorts: !args['free-ports'],
  });
  const zt = await Ztunnel.start({
    config: resolveConfig({ env }),
    logger: pino({ level: 'info' }, sink),
  });
  nodes.push({ ...w, zt, logs });
}
const [httpbin, sleep, notsleep] = nodes as [
  (typeof nodes)[0],
  (typeof nodes)[0],
  (typeof nodes)[0],
];
for (let i = 0; i < 200 && !nodes.every((n) => n.zt.readiness.ready); i++)
  await new Promise((r) => setTimeout(r, 25));

console.log(`local mesh: ${nodes.length} ztunnels, local config ${localConfig}`);
for (const n of nodes) {
  const a = n.zt.addresses;
  console.log(
    `  ${n.name.padEnd(8)} ${n.ip}  ready=${n.zt.readiness.ready}  HBONE :${a.inbound?.port}  SOCKS5 :${a.socks5?.port}  admin :${a.admin.port}`,
  );
}

let failures = 0;
function check(what: string, ok: boolean, detail = ''): void {
  if (!ok) failures++;
  console.log(`${ok ? 'ok  ' : 'FAIL'} ${what}${detail ? `: ${detail}` : ''}`);
}
const socks = (n: MeshNode) => ({ host: n.ip, port: n.zt.addresses.socks5?.port ?? 0 });
const lastAccess = (pred: (l: Record<string, unknown>) => boolean) =>
  [...httpbin.logs].reverse().find((l) => l.component === 'access' && pred(l));
const settle = () => new Promise((r) => setTimeout(r, 100));

// 1. Allowed: sleep's identity is in the ALLOW policy.
try {
  const { status, body } = await httpGetViaSocks(socks(sleep), { ip: VIP, port: 80 }, '/get');
  await settle();
  const entry = lastAccess((l) => l.direction === 'inbound' && l.msg === 'connection complete');
  check('sleep -> httpbin over HBONE', status.includes('200'), `${status}, ${body.trim()}`);
  console.log(
    `     httpbin's ztunnel saw ${String(entry?.['src.identity'])} -> ${String(entry?.['dst.identity'])}`,
  );
} catch (err) {
  check('sleep -> httpbin over HBONE', false, (err as Error).message);
}

// 2. Denied: notsleep has its own identity, which no ALLOW rule names.
try {
  await httpGetViaSocks(socks(notsleep), { ip: VIP, port: 80 }, '/get');
  check('notsleep -> httpbin refused by httpbin-allow-sleep', false, 'it went through');
} catch (err) {
  await settle();
  const denied = lastAccess((l) => String(l.error ?? '').includes('policy rejection'));
  check(
    'notsleep -> httpbin refused by httpbin-allow-sleep',
    denied !== undefined,
    String(denied?.error ?? (err as Error).message),
  );
}

// 3. Denied: plaintext to httpbin's inbound plaintext port has no identity (STRICT).
const plain = httpbin.zt.addresses.inboundPlaintext;
const plaintextReply = await new Promise<string>((resolve) => {
  const s = connect(plain?.port ?? 0, plain?.address ?? httpbinIp);
  let got = '';
  s.on('data', (d) => (got += d));
  s.on('error', () => {});
  s.on('close', () => resolve(got));
  s.end('GET / HTTP/1.0\r\n\r\n');
});
await settle();
const strict = lastAccess((l) => String(l.error ?? '').includes('istio_converted_static_strict'));
check(
  'plaintext -> httpbin refused under STRICT',
  plaintextReply === '' && strict !== undefined,
  String(strict?.error ?? ''),
);

// 4. Metrics, as Prometheus scrapes them from :15020.
const stats = httpbin.zt.addresses.stats;
const metrics = await (await fetch(`http://${stats.address}:${stats.port}/metrics`)).text();
const opened = metrics
  .split('\n')
  .find(
    (l) =>
      l.startsWith('istio_tcp_connections_opened_total{') && l.includes('source_workload="sleep"'),
  );
check('httpbin reports istio_tcp_connections_opened_total for sleep', opened !== undefined);

async function stop(): Promise<void> {
  await Promise.all(nodes.map((n) => n.zt.close()));
  await new Promise((r) => app.close(r));
  rmSync(dir, { recursive: true, force: true });
}

if (args.keep) {
  const a = (n: MeshNode) => n.zt.addresses;
  console.log(`\nrunning; try (Ctrl-C to stop):
  curl --socks5 ${sleep.ip}:${a(sleep).socks5?.port} http://${VIP}/get
  curl --socks5 ${notsleep.ip}:${a(notsleep).socks5?.port} http://${VIP}/get
  curl http://${a(httpbin).admin.address}:${a(httpbin).admin.port}/config_dump
  curl http://${a(httpbin).stats.address}:${a(httpbin).stats.port}/metrics
  edit ${localConfig} (reloaded on save)`);
  await new Promise((resolve) => {
    process.once('SIGINT', resolve);
    process.once('SIGTERM', resolve);
  });
}
await stop();
process.exitCode = failures === 0 ? 0 : 1;
