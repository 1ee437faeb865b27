import { createHash } from 'node:crypto';
import { appendFileSync } from 'node:fs';
import { connect } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { socksConnect } from '../src/testing/index.js';
import { type MeshNode, startShaApp, waitFor, waitReady } from './helpers/mesh.js';
import { twoNodes } from './helpers/two-nodes.js';

let nodes: MeshNode[] = [];
let app: Awaited<ReturnType<typeof startShaApp>> | undefined;
afterEach(async () => {
  await Promise.all(nodes.map((n) => n.zt.close()));
  nodes = [];
  app?.close();
});

async function setup(deadline: string) {
  app = await startShaApp('127.0.0.4');
  const { client, server, file } = await twoNodes(app.port, {
    CONNECTION_TERMINATION_DEADLINE: deadline,
  });
  nodes = [client, server];
  for (const n of nodes) await waitReady(n);
  const tunnel = await socksConnect(
    { host: '127.0.0.2', port: client.zt.addresses.socks5!.port },
    { host: '10.96.0.40', port: 80 },
  );
  tunnel.removeAllListeners('close');
  const reply: Buffer[] = [];
  tunnel.on('data', (d) => reply.push(d));
  tunnel.resume();
  tunnel.on('error', () => {});
  const closed = new Promise<void>((r) => tunnel.on('close', () => r()));
  return { client, server, tunnel, reply, closed, file };
}

const refused = (port: number, host: string) =>
  new Promise<string>((resolve) => {
    const s = connect(port, host);
    s.on('connect', () => {
      s.destroy();
      resolve('connected');
    });
    s.on('error', (e: NodeJS.ErrnoException) => resolve(e.code ?? 'error'));
  });

describe('late policy enforcement', () => {
  it('closes an open inbound tunnel when a policy change now denies it', async () => {
    const { server, tunnel, closed, file } = await setup('5s');
    tunnel.write('open');
    await waitFor(
      () => server.zt.proxy!.context.connections.size > 0 || undefined,
      'tracked tunnel',
    );
    appendFileSync(
      file,
      'policies:\n- { name: deny-client, namespace: default, scope: Namespace, action: Deny, dryRun: false, rules: [[[ { principals: [!Suffix /sa/client] } ]]] }\n',
    );
    await closed;
    const line = await waitFor(
      () =>
        server.logs.lines.find((l) =>
          String(l.error ?? '').startsWith('connection closed due to policy change'),
        ),
      'policy change log',
    );
    expect(line.error).toBe(
      'connection closed due to policy change: explicitly denied by: default/deny-client',
    );
  });
});

describe('graceful shutdown', () => {
  it('fails readiness first, stops accepting, and lets an open tunnel finish its transfer', async () => {
    const { server, tunnel, reply, closed } = await setup('5s');
    tunnel.write('before-');
    const stopping = server.zt.close();
    const r = server.zt.addresses.readiness;
    expect(server.zt.readiness.ready).toBe(false);
    expect(server.zt.readiness.pending[0]).toBe('draining');
    const inbound = server.zt.addresses.inbound!;
    expect(
      await waitFor(
        async () =>
          (await refused(inbound.port, inbound.address)) === 'ECONNREFUSED'
            ? 'ECONNREFUSED'
            : undefined,
        'listener closed',
      ),
    ).toBe('ECONNREFUSED');
    tunnel.write('after');
    tunnel.end();
    await closed;
    expect(Buffer.concat(reply).toString()).toBe(
      `sha256 ${createHash('sha256').update('before-after').digest('hex')}\n`,
    );
    await stopping;
    expect(await fetch(`http://${r.address}:${r.port}/healthz/ready`).catch(() => 'closed')).toBe(
      'closed',
    );
  });

  it('closes tunnels still open at CONNECTION_TERMINATION_DEADLINE', async () => {
    const { server, tunnel, closed } = await setup('500ms');
    tunnel.write('hold the tunnel open');
    const t0 = Date.now();
    await server.zt.close();
    await closed;
    expect(Date.now() - t0).toBeGreaterThanOrEqual(400);
    expect(
      server.logs.lines.find(
        (l) => l.msg === 'closed connections still open at the termination deadline',
      ),
    ).toMatchObject({ connections: 1 });
  });
});
