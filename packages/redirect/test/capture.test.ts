import http from 'node:http';
import net from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  applyRedirect,
  connectSocket,
  createListenSocket,
  createTransparentServer,
  type OriginalDestination,
  originalDestination,
  removeRedirect,
} from '../src/index.js';
import { createLab, type Lab, type Pod } from '../src/testing/index.js';
import { closeServer, ns, readAll, reportSkip } from './helpers.js';

reportSkip('transparent capture in namespaces', ns.ok, ns.reason);

const UPSTREAM4 = '10.201.0.80';
const UPSTREAM6 = 'fd00:201::80';
const MARK = 0x539;

/** Pipes two sockets together until both ends are done. */
function splice(a: net.Socket, b: net.Socket): void {
  a.pipe(b);
  b.pipe(a);
  a.on('error', () => b.destroy());
  b.on('error', () => a.destroy());
}

/** GET / over the given connection. No `agent` option: an agent would ignore `createConnection` and dial from this namespace. */
function httpGet(socket: () => net.Socket, host: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const req = http.get({ host, port: 80, path: '/', createConnection: socket }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (d: string) => {
        body += d;
      });
      res.on('end', () => resolve(body));
    });
    req.setTimeout(10_000, () => req.destroy(new Error('request timed out')));
    req.on('error', reject);
  });
}

describe.runIf(ns.ok)('transparent capture in namespaces', () => {
  let lab: Lab;
  let pod: Pod;
  let upstream: http.Server;
  let outbound: net.Server;
  const captured: OriginalDestination[] = [];

  beforeAll(async () => {
    lab = await createLab({ ipv6: true });
    pod = await lab.addPod();
    await lab.node.addAddress(`${UPSTREAM4}/32`);
    await lab.node.addAddress(`${UPSTREAM6}/128`);
    // The "remote service" lives in the node namespace and tells who called it.
    upstream = http.createServer((req, res) =>
      res.end(`upstream saw ${req.socket.remoteAddress?.replace(/^::ffff:/, '')}`),
    );
    await new Promise<void>((r) =>
      upstream.listen(
        { fd: createListenSocket({ netns: lab.node.path, host: '::', port: 80 }) },
        r,
      ),
    );
    // ztunnel's outbound listener in the pod: recover the destination, dial it with the
    // proxy mark so the dial itself is not captured again, and splice.
    outbound = await createTransparentServer(
      { netns: pod.path, host: '::', port: 15001, transparent: true },
      (client) => {
        const dst = originalDestination(client);
        captured.push(dst);
        const server = connectSocket({
          netns: pod.path,
          mark: MARK,
          host: dst.address,
          port: dst.port,
        });
        splice(client, server);
      },
    );
  });

  afterAll(async () => {
    await closeServer(outbound);
    await closeServer(upstream);
    await lab?.destroy();
  });

  const fromPod = (host: string, mark?: number) => () =>
    connectSocket({ netns: pod.path, host, port: 80, ...(mark === undefined ? {} : { mark }) });

  for (const backend of ['iptables', 'nftables'] as const) {
    it(`redirects a pod's connection to ${UPSTREAM4}:80 to port 15001, which reports the original destination (${backend})`, async () => {
      await applyRedirect({ netns: pod.path, backend });
      captured.length = 0;
      const body = await httpGet(fromPod(UPSTREAM4), UPSTREAM4);
      expect(body).toBe(`upstream saw ${pod.ip4}`);
      expect(captured).toEqual([
        { address: UPSTREAM4, port: 80, family: 'IPv4', source: 'conntrack' },
      ]);
    });

    it(`redirects IPv6 the same way, recovered with IP6T_SO_ORIGINAL_DST (${backend})`, async () => {
      await applyRedirect({ netns: pod.path, backend });
      captured.length = 0;
      const body = await httpGet(fromPod(UPSTREAM6), UPSTREAM6);
      expect(body).toBe(`upstream saw ${pod.ip6}`);
      expect(captured).toEqual([
        { address: UPSTREAM6, port: 80, family: 'IPv6', source: 'conntrack' },
      ]);
    });

    it(`lets a socket carrying mark 0x539 through uncaptured (${backend})`, async () => {
      await applyRedirect({ netns: pod.path, backend });
      captured.length = 0;
      expect(await httpGet(fromPod(UPSTREAM4, MARK), UPSTREAM4)).toBe(`upstream saw ${pod.ip4}`);
      expect(await httpGet(fromPod(UPSTREAM6, MARK), UPSTREAM6)).toBe(`upstream saw ${pod.ip6}`);
      expect(captured).toEqual([]);
      // A different mark in the same low 12 bits space is captured.
      await httpGet(fromPod(UPSTREAM4, 0x538), UPSTREAM4);
      expect(captured).toHaveLength(1);
    });
  }

  it('captures curl, an unmodified application, in the pod', async () => {
    await applyRedirect({ netns: pod.path, backend: 'iptables' });
    captured.length = 0;
    const { stdout } = await pod.exec(['curl', '-sS', '--max-time', '10', `http://${UPSTREAM4}/`]);
    expect(stdout).toBe(`upstream saw ${pod.ip4}`);
    expect(captured).toEqual([
      { address: UPSTREAM4, port: 80, family: 'IPv4', source: 'conntrack' },
    ]);
  });

  it('stops capturing once the rules are removed', async () => {
    await applyRedirect({ netns: pod.path });
    await removeRedirect({ netns: pod.path });
    captured.length = 0;
    expect(await httpGet(fromPod(UPSTREAM4), UPSTREAM4)).toBe(`upstream saw ${pod.ip4}`);
    expect(captured).toEqual([]);
  });

  for (const backend of ['iptables', 'nftables'] as const) {
    it(`dedicated mode redirects outbound TCP but not loopback or marked traffic (${backend})`, async () => {
      await applyRedirect({ netns: pod.path, backend, mode: 'dedicated' });
      captured.length = 0;
      expect(await httpGet(fromPod(UPSTREAM4), UPSTREAM4)).toBe(`upstream saw ${pod.ip4}`);
      expect(captured).toEqual([
        { address: UPSTREAM4, port: 80, family: 'IPv4', source: 'conntrack' },
      ]);
      expect(await httpGet(fromPod(UPSTREAM4, MARK), UPSTREAM4)).toBe(`upstream saw ${pod.ip4}`);
      // Loopback is not captured: a local listener answers directly.
      const local = net.createServer((c) => c.end('local'));
      await new Promise<void>((r) =>
        local.listen(
          { fd: createListenSocket({ netns: pod.path, host: '127.0.0.1', port: 9 }) },
          r,
        ),
      );
      try {
        expect(await readAll(connectSocket({ netns: pod.path, host: '127.0.0.1', port: 9 }))).toBe(
          'local',
        );
      } finally {
        await closeServer(local);
      }
      expect(captured).toHaveLength(1);
      await removeRedirect({ netns: pod.path });
    });
  }
});

describe.runIf(ns.ok)('source-IP preservation on the inbound path', () => {
  let lab: Lab;
  let pod: Pod;
  let app: net.Server;
  let inbound: net.Server;
  const upstreamErrors: Error[] = [];

  beforeAll(async () => {
    lab = await createLab({ ipv6: true });
    pod = await lab.addPod();
    await applyRedirect({ netns: pod.path, backend: 'iptables' });
    // The application in the pod reports the peer it sees.
    app = await createTransparentServer({ netns: pod.path, host: '::', port: 8080 }, (c) =>
      c.end(`app saw ${c.remoteAddress?.replace(/^::ffff:/, '')} ${c.remotePort}`),
    );
    // ztunnel's inbound plaintext listener: dial the app from the client's own address
    // (remoteAddress is v4-mapped for IPv4 clients on this dual-stack socket).
    inbound = await createTransparentServer(
      { netns: pod.path, host: '::', port: 15006, transparent: true },
      (client) => {
        const dst = originalDestination(client);
        const server = connectSocket({
          netns: pod.path,
          host: dst.address,
          port: dst.port,
          localAddress: client.remoteAddress as string,
          transparent: true,
          freebind: true,
          mark: MARK,
        });
        server.on('error', (err) => upstreamErrors.push(err));
        splice(client, server);
      },
    );
  });

  afterAll(async () => {
    await closeServer(inbound);
    await closeServer(app);
    await lab?.destroy();
  });

  async function restoreMarkPackets(cmd: 'iptables' | 'ip6tables'): Promise<number> {
    const { stdout } = await pod.exec([
      cmd,
      '-t',
      'mangle',
      '-L',
      'ISTIO_OUTPUT',
      '-v',
      '-x',
      '-n',
    ]);
    const line = stdout.split('\n').find((l) => l.includes('CONNMARK restore'));
    return Number(line?.trim().split(/\s+/)[0]);
  }

  async function callApp(host: string): Promise<{ reply: string; from: string }> {
    const client = connectSocket({ netns: lab.node.path, host, port: 8080 });
    const from = new Promise<string>((r) =>
      client.once('connect', () => r(`${client.localAddress} ${client.localPort}`)),
    );
    const reply = await readAll(client);
    return { reply, from: await from };
  }

  for (const family of [4, 6] as const) {
    it(`the app sees the original client IP and its replies return through mark 0x111 and table 100 (IPv${family})`, async () => {
      const cmd = family === 4 ? 'iptables' : 'ip6tables';
      const before = await restoreMarkPackets(cmd);
      const { reply, from } = await callApp(family === 4 ? pod.ip4 : (pod.ip6 as string));
      // The client is the node side of the pod's link; the app saw exactly that address and
      // port, not the proxy's own (a pod address).
      expect(from.split(' ')[0]).toBe(family === 4 ? pod.gateway4 : pod.gateway6);
      // Only the address is preserved; the proxy's dial takes a fresh source port.
      expect(reply).toMatch(new RegExp(`^app saw ${from.split(' ')[0]} \\d+$`));
      // ... and its replies were marked from the connmark (the rule counted packets).
      expect(await restoreMarkPackets(cmd)).toBeGreaterThan(before);
      expect(upstreamErrors).toEqual([]);
    });
  }

  it('without the table-100 route the replies leave the pod and the spoofed connection never completes', async () => {
    await pod.exec(['ip', 'route', 'del', 'local', '0.0.0.0/0', 'dev', 'lo', 'table', '100']);
    try {
      const client = connectSocket({ netns: lab.node.path, host: pod.ip4, port: 8080 });
      const outcome = await Promise.race([
        readAll(client, 60_000).then(
          (r) => `reply: ${r}`,
          (e: Error) => `error: ${e.message}`,
        ),
        new Promise<string>((r) => setTimeout(() => r('no reply'), 1500)),
      ]);
      client.destroy();
      expect(outcome).not.toMatch(/app saw/);
    } finally {
      await applyRedirect({ netns: pod.path, backend: 'iptables' });
    }
    // Restored: works again.
    expect((await callApp(pod.ip4)).reply).toMatch(/^app saw /);
  });
});

describe.runIf(ns.ok)('TPROXY interception', () => {
  let lab: Lab;
  let pod: Pod;
  let proxy: net.Server;
  const seen: OriginalDestination[] = [];

  beforeAll(async () => {
    lab = await createLab({ ipv6: false });
    pod = await lab.addPod();
    // Traffic for 10.202.0.0/24 is routed into the pod, where TPROXY hands it to a transparent
    // listener without rewriting the destination; the policy route makes it local.
    await lab.node.exec(['ip', 'route', 'add', '10.202.0.0/24', 'via', pod.ip4]);
    await applyRedirect({ netns: pod.path, mode: 'dedicated', routing: true, ipv6: false });
    await pod.exec([
      'iptables',
      '-t',
      'mangle',
      '-A',
      'PREROUTING',
      '-p',
      'tcp',
      '-d',
      '10.202.0.0/24',
      '-j',
      'TPROXY',
      '--on-port',
      '15009',
      '--tproxy-mark',
      '0x111/0xfff',
    ]);
    proxy = await createTransparentServer(
      { netns: pod.path, host: '0.0.0.0', port: 15009, transparent: true },
      (c) => {
        seen.push(originalDestination(c));
        c.end('intercepted');
      },
    );
  });

  afterAll(async () => {
    await closeServer(proxy);
    await lab?.destroy();
  });

  it('reports the intercepted destination, from conntrack or, when untracked, from the local address', async () => {
    // Port 9091 bypasses conntrack, so only the local-address fallback can answer. Both
    // directions: an untracked reply would look like a new connection to nat OUTPUT.
    const notrack = (chain: string, match: string) =>
      pod.exec([
        'iptables',
        '-t',
        'raw',
        '-A',
        chain,
        '-p',
        'tcp',
        match,
        '9091',
        '-j',
        'CT',
        '--notrack',
      ]);
    await notrack('PREROUTING', '--dport');
    await notrack('OUTPUT', '--sport');
    for (const port of [9090, 9091]) {
      const reply = await readAll(
        connectSocket({ netns: lab.node.path, host: '10.202.0.9', port }),
      );
      expect(reply).toBe('intercepted');
    }
    expect(seen).toEqual([
      { address: '10.202.0.9', port: 9090, family: 'IPv4', source: 'conntrack' },
      { address: '10.202.0.9', port: 9091, family: 'IPv4', source: 'local' },
    ]);
  });
});

describe.runIf(ns.ok)('sockets created through the netns call', () => {
  let lab: Lab;
  let pod: Pod;
  beforeAll(async () => {
    lab = await createLab({ ipv6: false });
    pod = await lab.addPod();
  });
  afterAll(async () => {
    await lab?.destroy();
  });

  it('listen in the other namespace: ss sees them there and the pod address reaches them', async () => {
    const server = net.createServer((c) => c.end(`hello from ${c.localAddress}`));
    await new Promise<void>((r) =>
      server.listen({ fd: createListenSocket({ netns: pod.path, host: '0.0.0.0', port: 0 }) }, r),
    );
    const { port } = server.address() as net.AddressInfo;
    try {
      const { stdout } = await pod.exec(['ss', '-ltnH', `sport = :${port}`]);
      expect(stdout).toContain(`:${port}`);
      const { stdout: onNode } = await lab.node.exec(['ss', '-ltnH', `sport = :${port}`]);
      expect(onNode.trim()).toBe('');
      const reply = await readAll(connectSocket({ netns: lab.node.path, host: pod.ip4, port }));
      expect(reply).toBe(`hello from ${pod.ip4}`);
    } finally {
      await closeServer(server);
    }
  });

  it('connect from the other namespace: the peer sees the pod address', async () => {
    const server = net.createServer((c) => c.end(String(c.remoteAddress)));
    await new Promise<void>((r) =>
      server.listen(
        { fd: createListenSocket({ netns: lab.node.path, host: pod.gateway4, port: 0 }) },
        r,
      ),
    );
    const { port } = server.address() as net.AddressInfo;
    try {
      expect(await readAll(connectSocket({ netns: pod.path, host: pod.gateway4, port }))).toBe(
        pod.ip4,
      );
    } finally {
      await closeServer(server);
    }
  });

  it('accepts an open namespace fd, as ZDS delivers it', async () => {
    const { openSync, closeSync } = await import('node:fs');
    const nsFd = openSync(pod.path, 'r');
    try {
      const fd = createListenSocket({ netns: nsFd, host: pod.ip4, port: 0 });
      const server = net.createServer((c) => c.end('ok'));
      await new Promise<void>((r) => server.listen({ fd }, r));
      expect((server.address() as net.AddressInfo).address).toBe(pod.ip4);
      await closeServer(server);
    } finally {
      closeSync(nsFd);
    }
  });

  it('rejects a file that is not a network namespace with EINVAL and stays in its own namespace', async () => {
    const { netnsId } = await import('../src/index.js');
    const home = netnsId();
    expect(() => createListenSocket({ netns: '/proc/self/ns/uts' })).toThrow(
      expect.objectContaining({ code: 'EINVAL', syscall: 'setns' }),
    );
    expect(() => createListenSocket({ netns: '/etc/hostname' })).toThrow(
      expect.objectContaining({ code: 'EINVAL' }),
    );
    expect(netnsId()).toBe(home);
    createListenSocket({ netns: pod.path, host: pod.ip4 });
    expect(netnsId()).toBe(home);
  });
});
