import { execFileSync } from 'node:child_process';
import { mkdtemp, readdir, rm } from 'node:fs/promises';
import { createServer, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { connect as tlsConnect } from 'node:tls';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Agent } from '../src/lib/agent.js';
import { createClientServerPki, createTestPki } from '../src/lib/certs.js';
import { killAllChildren } from '../src/lib/children.js';
import { runIperf3, startIperf3Server } from '../src/lib/iperf3.js';
import { startStunnelPair } from '../src/lib/stunnel.js';
import { comparePaths, directPath, type TrafficPath } from '../src/lib/suite.js';
import {
  type RunningServer,
  runBulk,
  runConnRate,
  runLatency,
  startEcho,
  startSink,
} from '../src/lib/traffic.js';
import { loopbackNodes, startZtunnelPair, ztunnelPath } from '../src/lib/ztunnel.js';
import type { ScenarioContext } from '../src/scenario.js';

const has = (cmd: string) => {
  try {
    execFileSync('sh', ['-c', `command -v ${cmd}`], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
};
const FAKE_ZTUNNEL = fileURLToPath(new URL('./fixtures/fake-ztunnel.ts', import.meta.url));

let dir: string;
let pki: Awaited<ReturnType<typeof createClientServerPki>>;
const servers: RunningServer[] = [];

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'mesh-bench-tools-'));
  pki = await createClientServerPki(join(dir, 'pki'));
}, 30_000);

afterAll(async () => {
  for (const s of servers) await s.close();
  await killAllChildren();
  await rm(dir, { recursive: true, force: true });
});

describe('traffic', () => {
  it('moves bulk data to a sink that confirms every byte', async () => {
    const sink = await startSink();
    servers.push(sink);
    const r = await runBulk({
      dial: { target: sink },
      connections: 2,
      durationMs: 100,
      chunkBytes: 64 * 1024,
    });
    expect(r.connections).toBe(2);
    expect(r.bytes).toBeGreaterThan(0);
    expect(r.bytes % (64 * 1024)).toBe(0);
  });

  it('fails a bulk run when the sink counted a different number of bytes', async () => {
    const liar: Server = createServer((s) => {
      s.resume();
      s.on('end', () => s.end(Buffer.alloc(8)));
    });
    await new Promise<void>((r) => liar.listen(0, '127.0.0.1', r));
    const port = (liar.address() as { port: number }).port;
    try {
      await expect(
        runBulk({ dial: { target: { host: '127.0.0.1', port } }, durationMs: 50 }),
      ).rejects.toThrow(/sink counted 0 bytes/);
    } finally {
      liar.close();
    }
  });

  it('times 1 KiB round trips at a fixed rate and counts new connections', async () => {
    const echo = await startEcho();
    servers.push(echo);
    const r = await runLatency({
      dial: { target: echo },
      connections: 2,
      rate: 200,
      durationMs: 200,
      warmup: 2,
    });
    expect(r.requests).toBeGreaterThan(0);
    expect(r.latencyMs.p50).toBeLessThanOrEqual(r.latencyMs.p99);
    const c = await runConnRate({ dial: { target: echo }, concurrency: 2, durationMs: 100 });
    expect(c.connections).toBeGreaterThan(0);
    expect(c.setupMs.count).toBe(c.connections);
  });

  it('runs servers and clients in agent processes and writes their CPU profile on close', async () => {
    const profileDir = join(dir, 'profiles');
    const server = await Agent.start({ name: 'test server agent' });
    const client = await Agent.start({
      name: 'test client agent',
      profile: { dir: profileDir, name: 'client-agent' },
    });
    try {
      const sink = await server.sink();
      const r = await client.bulk({ dial: { target: sink }, durationMs: 100 });
      expect(r.bytes).toBeGreaterThan(0);
      const idle = await client.idle({ dial: { target: await server.echo() }, count: 10 });
      expect(idle.count).toBe(10);
      await idle.close();
    } finally {
      await client.close();
      await server.close();
    }
    expect((await readdir(profileDir)).some((f) => /^client-agent-.*\.cpuprofile$/.test(f))).toBe(
      true,
    );
  });
});

describe.skipIf(!has('stunnel4'))('stunnel4 pair', () => {
  it('carries every byte through mutual TLS 1.3 and refuses a client from another CA', async () => {
    const sink = await startSink();
    servers.push(sink);
    const pair = await startStunnelPair({
      target: sink,
      client: pki.files('client'),
      server: pki.files('server'),
      dir,
    });
    try {
      const r = await runBulk({ dial: { target: pair.entry }, durationMs: 100 });
      expect(r.bytes).toBeGreaterThan(0);

      const other = await createTestPki({
        dir: join(dir, 'other'),
        identities: { c: 'spiffe://evil/ns/x/sa/y' },
      });
      const outcome = await new Promise<string>((resolve) => {
        const s = tlsConnect({
          host: '127.0.0.1',
          port: pair.tlsPort,
          cert: other.leaves.c!.certPem,
          key: other.leaves.c!.keyPem,
          ca: pki.caPem,
          checkServerIdentity: () => undefined,
        });
        s.on('secureConnect', () => {
          // TLS 1.3 client auth fails after the client's Finished: wait for the alert.
          s.write('x');
          s.once('data', () => resolve('accepted'));
        });
        s.on('error', (err) => resolve(`refused: ${err.message}`));
        s.on('close', () => resolve('refused: closed'));
      });
      expect(outcome).toMatch(/^refused/);
    } finally {
      await pair.close();
    }
    expect(pair.client.running || pair.server.running).toBe(false);
  });
});

describe.skipIf(!has('iperf3'))('iperf3', () => {
  it('measures a short run and parses its JSON report', async () => {
    const server = await startIperf3Server();
    try {
      const r = await runIperf3({ target: server.endpoint, seconds: 1 });
      expect(r.gbps).toBeGreaterThan(0);
      expect(r.bytes).toBeGreaterThan(0);
    } finally {
      await server.close();
    }
  });
});

describe('ztunnel pair harness', () => {
  it('starts two proxies on their own loopback node addresses and tunnels SOCKS5 clients through them', async () => {
    const { clientIp, serverIp } = loopbackNodes();
    const pair = await startZtunnelPair({
      entry: FAKE_ZTUNNEL,
      dir,
      caDir: join(dir, 'pki'),
      clientIp,
      serverIp,
      profile: { dir: join(dir, 'zt-profiles') },
    });
    try {
      const sink = await startSink({ host: serverIp });
      servers.push(sink);
      const hop = await ztunnelPath(pair).setup(
        { host: serverIp, port: sink.port },
        'sink',
        AbortSignal.timeout(5000),
      );
      expect(hop.dial.socks5).toEqual({ host: clientIp, port: 15080 });
      const r = await runBulk({ dial: hop.dial, durationMs: 100 });
      expect(r.bytes).toBeGreaterThan(0);
      expect(hop.processes.map((p) => p.name)).toEqual(['client ztunnel', 'server ztunnel']);
    } finally {
      await pair.close();
    }
    const profiles = await readdir(join(dir, 'zt-profiles'));
    expect(profiles.filter((f) => f.endsWith('.cpuprofile')).length).toBe(2);
  });
});

describe('comparePaths', () => {
  it('measures every figure on the paths that work and notes the path that does not', async () => {
    const server = await Agent.start({ name: 'suite server agent' });
    const client = await Agent.start({ name: 'suite client agent' });
    const broken: TrafficPath = {
      name: 'broken',
      setup: async () => ({
        dial: { target: { host: '127.0.0.1', port: 1 } },
        processes: [],
        close: async () => {},
      }),
    };
    const ctx: ScenarioContext = {
      quick: true,
      profile: false,
      profileDir: dir,
      tmpDir: dir,
      signal: AbortSignal.timeout(60_000),
      log: () => {},
    };
    try {
      const r = await comparePaths(ctx, {
        paths: [directPath(), broken],
        serverAgent: server,
        clientAgent: client,
        sizes: { bulkMs: 50, fixedMs: 50, saturateMs: 50, connRateMs: 50 },
      });
      const names = r.measurements.map((m) => m.name);
      expect(names).toEqual(
        expect.arrayContaining([
          'throughput 1 conn · direct TCP',
          'throughput 8 conns · direct TCP',
          'latency @400 rps · direct TCP',
          'latency saturated (4 conns) · direct TCP',
          'new connections/s · direct TCP',
        ]),
      );
      expect(names.filter((n) => n.endsWith('· broken'))).toEqual([]);
      expect(r.notes.filter((n) => n.includes('via broken failed')).length).toBeGreaterThanOrEqual(
        5,
      );
    } finally {
      await client.close();
      await server.close();
    }
  });
});
