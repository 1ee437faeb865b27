import { createHash, randomBytes } from 'node:crypto';
import { readdirSync } from 'node:fs';
import { connect } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { socksConnect } from '../src/testing/index.js';
import type { MeshNode } from './helpers/mesh.js';
import { startShaApp, waitFor, waitReady } from './helpers/mesh.js';
import { twoNodes } from './helpers/two-nodes.js';

let client: MeshNode;
let server: MeshNode;
let app: Awaited<ReturnType<typeof startShaApp>>;

beforeAll(async () => {
  app = await startShaApp('127.0.0.4');
  ({ client, server } = await twoNodes(app.port, { SECRET_TTL: '3s' }));
  for (const n of [client, server]) await waitReady(n);
});

afterAll(async () => {
  await Promise.all([client?.zt.close(), server?.zt.close()]);
  app?.close();
});

const proxy = () => ({ host: '127.0.0.2', port: client.zt.addresses.socks5!.port });
const target = { host: '10.96.0.40', port: 80 };

/** Sends `data` through the mesh and returns the app's answer. */
async function roundTrip(data: Buffer | Buffer[]): Promise<string> {
  const s = await socksConnect(proxy(), target);
  s.removeAllListeners('close');
  const chunks: Buffer[] = [];
  s.on('data', (c) => chunks.push(c));
  s.resume();
  const closed = new Promise<void>((r) => s.on('close', () => r()));
  for (const d of Array.isArray(data) ? data : [data])
    if (!s.write(d)) await new Promise((r) => s.once('drain', r));
  s.end();
  await closed;
  return Buffer.concat(chunks).toString();
}

describe('data integrity and certificate rotation', () => {
  it('carries 64 MiB through two ztunnels byte for byte', async () => {
    const block = randomBytes(1024 * 1024);
    const blocks = Array.from({ length: 64 }, (_, i) =>
      Buffer.concat([block.subarray(i), block.subarray(0, i)]),
    );
    const h = createHash('sha256');
    for (const b of blocks) h.update(b);
    expect(await roundTrip(blocks)).toBe(`sha256 ${h.digest('hex')}\n`);
  }, 60_000);

  it('rotates 3-second certificates under load without losing a tunnel', async () => {
    const serial = async () => {
      const a = server.zt.addresses.admin;
      const d = (await (await fetch(`http://${a.address}:${a.port}/config_dump`)).json()) as {
        certificates: { serialNumber?: string; certChain: { serialNumber: string }[] }[];
      };
      return d.certificates[0]?.certChain[0]?.serialNumber;
    };
    const first = await serial();
    // One long tunnel spanning the rotation, plus a new connection every 200 ms.
    const long = await socksConnect(proxy(), target);
    long.removeAllListeners('close');
    const longReply: Buffer[] = [];
    long.on('data', (d) => longReply.push(d));
    long.resume();
    const longClosed = new Promise<void>((r) => long.on('close', () => r()));
    const h = createHash('sha256');
    const results: string[] = [];
    const deadline = Date.now() + 4500;
    while (Date.now() < deadline) {
      const piece = randomBytes(4096);
      h.update(piece);
      long.write(piece);
      results.push(await roundTrip(Buffer.from('ping')));
      await new Promise((r) => setTimeout(r, 200));
    }
    long.end();
    await longClosed;
    const ping = `sha256 ${createHash('sha256').update('ping').digest('hex')}\n`;
    expect(results.length).toBeGreaterThan(10);
    expect(results.every((r) => r === ping)).toBe(true);
    expect(Buffer.concat(longReply).toString()).toBe(`sha256 ${h.digest('hex')}\n`);
    expect(await serial()).not.toBe(first);
  }, 30_000);
});

describe('metrics of long connections', () => {
  it('counts the bytes of a tunnel that is still open on every scrape', async () => {
    const scrape = async () => {
      const st = server.zt.addresses.stats;
      const text = await (await fetch(`http://${st.address}:${st.port}/metrics`)).text();
      return text
        .split('\n')
        .filter((l) => l.startsWith('istio_tcp_received_bytes_total{reporter="destination"'))
        .reduce((n, l) => n + Number(l.split(' ').at(-1)), 0);
    };
    const before = await scrape();
    const s = await socksConnect(proxy(), target);
    s.removeAllListeners('close');
    s.on('data', () => {});
    s.resume();
    s.write(randomBytes(300 * 1024));
    const during = await waitFor(async () => {
      const n = await scrape();
      return n - before >= 300 * 1024 ? n : undefined;
    }, 'live byte count');
    expect(during - before).toBe(300 * 1024);
    const closed = new Promise((r) => s.on('close', r));
    s.end();
    await closed;
  });
});

function openFds(): number {
  return readdirSync('/proc/self/fd').length;
}

describe('bad input', () => {
  it('survives garbage sent to every port and returns to its file-descriptor baseline', async () => {
    await roundTrip(Buffer.from('warm-up'));
    const baseline = openFds();
    const a = server.zt.addresses;
    const ports = [
      a.inbound!,
      a.inboundPlaintext!,
      a.outbound!,
      a.socks5!,
      a.admin,
      a.stats,
      a.readiness,
    ];
    const garbage = [
      randomBytes(3000),
      Buffer.from('\x16\x03\x01\x00\x05hello'),
      Buffer.from('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n'),
      Buffer.from('GET /%zz HTTP/1.1\r\nHost:\r\n\r\n'),
      Buffer.from([5, 1, 0, 5, 9, 0, 7]),
    ];
    await Promise.all(
      ports.flatMap((p) =>
        garbage.map(
          (g) =>
            new Promise<void>((resolve) => {
              const s = connect(p.port, p.address, () => s.end(g));
              s.on('error', () => resolve());
              s.on('close', () => resolve());
              s.setTimeout(3000, () => s.destroy());
              s.resume();
            }),
        ),
      ),
    );
    expect(await roundTrip(Buffer.from('still alive'))).toMatch(/^sha256 /);
    await waitFor(() => (openFds() <= baseline + 2 ? true : undefined), 'fd baseline', 15_000);
    const r = server.zt.addresses.readiness;
    expect((await fetch(`http://${r.address}:${r.port}/healthz/ready`)).status).toBe(200);
  }, 30_000);
});
