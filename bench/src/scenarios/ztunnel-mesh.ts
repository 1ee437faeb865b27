import { writeFileSync } from 'node:fs';
import net from 'node:net';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { resolveConfig, Ztunnel } from '@mesh/ztunnel';
import { loopbackNodeEnv, socksConnect, waitUntilReady } from '@mesh/ztunnel/testing';
import type { Measurement, Scenario, ScenarioContext } from '../scenario.js';

const MiB = 1 << 20;

async function freePort(): Promise<number> {
  const s = net.createServer();
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
  const { port } = s.address() as net.AddressInfo;
  await new Promise((r) => s.close(r));
  return port;
}

/** A sink that answers one byte once the client half-closes (so the sender knows all arrived). */
async function sink(host: string): Promise<net.Server> {
  const server = net.createServer({ allowHalfOpen: true }, (s) => {
    s.on('data', () => {});
    s.on('end', () => s.end('k'));
    s.on('error', () => {});
  });
  await new Promise<void>((r) => server.listen(0, host, r));
  return server;
}

/** Sends `bytes` over `socket` and waits for the sink's acknowledgement. */
async function send(socket: net.Socket, bytes: number): Promise<void> {
  const chunk = Buffer.alloc(256 * 1024, 7);
  const done = new Promise<void>((resolve, reject) => {
    socket.on('data', () => {});
    socket.on('close', () => resolve());
    socket.on('error', reject);
  });
  socket.resume();
  for (let sent = 0; sent < bytes; sent += chunk.length) {
    if (!socket.write(chunk)) await new Promise((r) => socket.once('drain', r));
  }
  socket.end();
  await done;
}

async function startNode(
  ip: string,
  name: string,
  file: string,
  caDir: string,
  hbonePort: number,
): Promise<Ztunnel> {
  const env = loopbackNodeEnv({
    ip,
    workload: `default/${name}/${name}`,
    localXdsPath: file,
    caDir,
    hbonePort,
  });
  const zt = await Ztunnel.start({
    config: resolveConfig({ env: { ...env, LOG_LEVEL: 'fatal' } }),
  });
  await waitUntilReady(zt);
  return zt;
}

const scenario: Scenario = {
  name: 'ztunnel/mesh',
  description:
    'Two dedicated-mode ztunnels in one process (client 127.0.0.2 with SOCKS5, server 127.0.0.4): bulk throughput and new-connection rate through SOCKS5 → HBONE → app, against direct TCP to the same app',
  kind: 'micro',
  async run(ctx: ScenarioContext) {
    const app = await sink('127.0.0.4');
    const appPort = (app.address() as net.AddressInfo).port;
    const file = join(ctx.tmpDir, 'mesh.yaml');
    writeFileSync(
      file,
      `workloads:
- { uid: c, name: client, namespace: default, serviceAccount: client, trustDomain: cluster.local, workloadIps: ["127.0.0.2"], protocol: HBONE }
- { uid: s, name: server, namespace: default, serviceAccount: server, trustDomain: cluster.local, workloadIps: ["127.0.0.4"], protocol: HBONE }
`,
    );
    const hbonePort = await freePort();
    const caDir = join(ctx.tmpDir, 'ca');
    const server = await startNode('127.0.0.4', 'server', file, caDir, hbonePort);
    const client = await startNode('127.0.0.2', 'client', file, caDir, hbonePort);
    const proxy = { host: '127.0.0.2', port: client.addresses.socks5!.port };
    const target = { host: '127.0.0.4', port: appPort };
    const bytes = (ctx.quick ? 32 : 512) * MiB;
    const connections = ctx.quick ? 50 : 500;
    const measurements: Measurement[] = [];
    try {
      const throughput = async (open: () => Promise<net.Socket>) => {
        const s = await open();
        const t0 = performance.now();
        await send(s, bytes);
        return (bytes * 8) / ((performance.now() - t0) / 1000) / 1e9;
      };
      const direct = () =>
        new Promise<net.Socket>((resolve, reject) => {
          const s = net.connect(appPort, '127.0.0.4', () => resolve(s));
          s.once('error', reject);
        });
      ctx.log(`throughput: ${bytes / MiB} MiB direct, then through the mesh`);
      measurements.push({
        name: 'throughput 1 conn · direct TCP',
        unit: 'Gb/s',
        value: await throughput(direct),
        better: 'higher',
      });
      measurements.push({
        name: 'throughput 1 conn · in-process mesh',
        unit: 'Gb/s',
        value: await throughput(() => socksConnect(proxy, target)),
        better: 'higher',
        compareTo: ['throughput 1 conn · direct TCP'],
      });
      const rate = async (open: () => Promise<net.Socket>) => {
        const t0 = performance.now();
        for (let i = 0; i < connections; i++) await send(await open(), 1);
        return connections / ((performance.now() - t0) / 1000);
      };
      ctx.log(`connection rate: ${connections} sequential connections each way`);
      measurements.push({
        name: 'new connections · direct TCP',
        unit: 'conn/s',
        value: await rate(direct),
        better: 'higher',
      });
      measurements.push({
        name: 'new connections · in-process mesh',
        unit: 'conn/s',
        value: await rate(() => socksConnect(proxy, target)),
        better: 'higher',
        compareTo: ['new connections · direct TCP'],
      });
    } finally {
      await Promise.all([client.close(), server.close()]);
      app.close();
    }
    return {
      measurements,
      notes: [
        `${bytes / MiB} MiB per throughput run; ${connections} connections per rate run (1 byte each, reply awaited)`,
        'both ztunnels, the client and the app share one Node process and event loop: the mesh figures include all of them',
        'mesh connections reuse the pooled HBONE connection (a new CONNECT stream each)',
      ],
    };
  },
};

export default scenario;
