import { subscribe, unsubscribe } from 'node:diagnostics_channel';
import { closeSync, openSync } from 'node:fs';
import net from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import {
  connectSocket,
  createListenSocket,
  createOutboundSocket,
  createTransparentServer,
  getMark,
  originalDestination,
  probeCapabilities,
  RedirectError,
  setMark,
  socketFd,
} from '../src/index.js';
import { closeServer, fdCount, isRoot, linux, readAll, reportSkip } from './helpers.js';

const privileged = linux && isRoot;
reportSkip(
  'sockets (privileged)',
  privileged,
  linux ? 'needs root for IP_TRANSPARENT/SO_MARK' : 'needs Linux',
);

const servers: net.Server[] = [];
const sockets: net.Socket[] = [];
afterEach(async () => {
  for (const s of sockets.splice(0)) s.destroy();
  await Promise.all(servers.splice(0).map(closeServer));
});

function track<T extends net.Server | net.Socket>(x: T): T {
  if (x instanceof net.Server) servers.push(x);
  else sockets.push(x as net.Socket);
  return x;
}

function listenFd(fd: number): Promise<net.Server> {
  const server = track(net.createServer((c) => c.end(`${c.remoteAddress} ${c.remotePort}`)));
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen({ fd }, () => resolve(server));
  });
}

function connected(socket: net.Socket): Promise<net.Socket> {
  return new Promise((resolve, reject) => {
    socket.once('connect', () => resolve(socket));
    socket.once('error', reject);
  });
}

describe.runIf(linux)('sockets (any user)', () => {
  it('hands Node a listening fd it serves connections on', async () => {
    const server = await listenFd(createListenSocket({ host: '127.0.0.1', port: 0 }));
    const { port } = server.address() as net.AddressInfo;
    expect(port).toBeGreaterThan(0);
    const client = track(net.connect(port, '127.0.0.1'));
    const reply = await readAll(client);
    expect(reply).toBe(`127.0.0.1 ${client.localPort}`);
  });

  it('lets two SO_REUSEPORT listeners share a port, and refuses the second without it', async () => {
    const first = await listenFd(
      createListenSocket({ host: '127.0.0.1', port: 0, reusePort: true }),
    );
    const { port } = first.address() as net.AddressInfo;
    const second = await listenFd(createListenSocket({ host: '127.0.0.1', port, reusePort: true }));
    expect((second.address() as net.AddressInfo).port).toBe(port);
    expect(() => createListenSocket({ host: '127.0.0.1', port })).toThrow(
      expect.objectContaining({ code: 'EADDRINUSE', syscall: 'bind', errno: -98 }),
    );
  });

  it('reads the fd under a net.Socket and a net.Server, and says when there is none', async () => {
    const server = track(net.createServer((c) => c.end()));
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const serverFd = socketFd(server);
    expect(serverFd).toBeGreaterThan(2);
    const client = track(net.connect((server.address() as net.AddressInfo).port, '127.0.0.1'));
    expect(() => socketFd(client)).toThrow(expect.objectContaining({ code: 'ERR_REDIRECT_NO_FD' }));
    await connected(client);
    const fd = socketFd(client);
    expect(fd).not.toBe(serverFd);
    // The same socket: the original destination of an un-NATed socket is its local address.
    expect(originalDestination(fd)).toEqual({
      address: '127.0.0.1',
      port: client.localPort,
      family: 'IPv4',
      source: 'local',
    });
    client.destroy();
    expect(() => socketFd(client)).toThrow(RedirectError);
  });

  it('falls back to the local address when a dual-stack listener accepts IPv4 without NAT', async () => {
    const seen: unknown[] = [];
    const server = track(
      await createTransparentServer({ host: '::', port: 0 }, (c) => {
        seen.push(originalDestination(c));
        c.end();
      }),
    );
    const { port } = server.address() as net.AddressInfo;
    await readAll(track(net.connect(port, '127.0.0.1')));
    await readAll(track(net.connect(port, '::1')));
    expect(seen).toEqual([
      { address: '127.0.0.1', port, family: 'IPv4', source: 'local' },
      { address: '::1', port, family: 'IPv6', source: 'local' },
    ]);
  });

  it('connects an fd it created through Node and emits connect', async () => {
    const server = await listenFd(createListenSocket({ host: '127.0.0.1' }));
    const { port } = server.address() as net.AddressInfo;
    const client = track(
      connectSocket({ host: '127.0.0.1', port, localAddress: '127.0.0.1', noDelay: true }),
    );
    await connected(client);
    expect(client.remotePort).toBe(port);
    expect(await readAll(client)).toBe(`127.0.0.1 ${client.localPort}`);
  });

  it('documents why connectSocket connects in the same tick: Node reads a wrapped unconnected fd and destroys it', async () => {
    const fd = createOutboundSocket({ family: 4 });
    const socket = track(new net.Socket({ fd }));
    const err = await new Promise<NodeJS.ErrnoException>((resolve) =>
      socket.once('error', resolve),
    );
    expect(err.code).toBe('ENOTCONN');
    expect(socket.destroyed).toBe(true);
  });

  it('reports a bind to a foreign address without transparent as EADDRNOTAVAIL with a hint', () => {
    const before = fdCount();
    let caught: unknown;
    try {
      createOutboundSocket({ localAddress: '10.123.45.67' });
    } catch (err) {
      caught = err;
    }
    expect(caught).toMatchObject({ code: 'EADDRNOTAVAIL', syscall: 'bind', errno: -99 });
    expect((caught as Error).message).toMatch(/transparent/);
    expect(fdCount()).toBe(before);
  });

  it('rejects bad arguments with typed errors before touching the kernel', () => {
    const before = fdCount();
    const bad: Array<() => unknown> = [
      () => createListenSocket({ port: 70000 }),
      () => createListenSocket({ host: 'localhost' }),
      () => createListenSocket({ mark: -1 }),
      () => createListenSocket({ mark: 2 ** 32 }),
      () => createListenSocket({ netns: '' }),
      () => createListenSocket({ backlog: -5 }),
      () => createOutboundSocket({ localPort: 80 }),
      () => connectSocket({ host: 'example.com', port: 80 }),
      () => connectSocket({ host: '127.0.0.1', port: 0 }),
      () => connectSocket({ host: '127.0.0.1', port: 80, localAddress: '::1' }),
      () => originalDestination(-1),
      () => setMark(1.5, 1),
      () => getMark(Number.NaN),
    ];
    for (const f of bad) {
      expect(f).toThrow(expect.objectContaining({ code: 'ERR_REDIRECT_INVALID_ARGUMENT' }));
    }
    expect(fdCount()).toBe(before);
  });

  it('reports a closed fd as EBADF and a non-socket fd as ENOTSOCK', () => {
    expect(() => originalDestination(987_654)).toThrow(
      expect.objectContaining({ code: 'EBADF', syscall: 'getsockname' }),
    );
    expect(() => getMark(987_654)).toThrow(
      expect.objectContaining({ code: 'EBADF', syscall: 'getsockopt', option: 'SO_MARK' }),
    );
    const file = openSync('/dev/null', 'r');
    try {
      expect(() => originalDestination(file)).toThrow(
        expect.objectContaining({ code: 'ENOTSOCK' }),
      );
    } finally {
      closeSync(file);
    }
  });

  it('publishes mesh:redirect:socket-created for every socket it creates', async () => {
    const seen: unknown[] = [];
    const onCreated = (m: unknown) => seen.push(m);
    subscribe('mesh:redirect:socket-created', onCreated);
    try {
      const server = await listenFd(createListenSocket({ host: '127.0.0.1' }));
      const { port } = server.address() as net.AddressInfo;
      const client = track(connectSocket({ host: '127.0.0.1', port }));
      await readAll(client);
    } finally {
      unsubscribe('mesh:redirect:socket-created', onCreated);
    }
    expect(seen).toEqual([
      { kind: 'listen', fd: expect.any(Number), host: '127.0.0.1', port: 0, netns: undefined },
      {
        kind: 'outbound',
        fd: expect.any(Number),
        host: undefined,
        port: undefined,
        netns: undefined,
      },
    ]);
  });

  it('opens a namespace by path and fails with ENOENT for a missing one', () => {
    expect(() => createListenSocket({ netns: '/nonexistent/netns' })).toThrow(
      expect.objectContaining({ code: 'ENOENT', syscall: 'open' }),
    );
  });
});

describe.runIf(privileged)('sockets (privileged)', () => {
  it('reports every capability as present for root', () => {
    const caps = probeCapabilities();
    expect(caps).toMatchObject({
      supported: true,
      transparent: true,
      transparent6: true,
      freebind: true,
      reusePort: true,
      mark: true,
      setns: true,
      originalDestination: true,
      missing: [],
    });
  });

  it('sets SO_MARK before bind on listeners and outbound sockets, and on existing sockets', async () => {
    const server = await listenFd(createListenSocket({ host: '127.0.0.1', mark: 0x539 }));
    expect(getMark(server)).toBe(0x539);
    const { port } = server.address() as net.AddressInfo;
    const client = track(connectSocket({ host: '127.0.0.1', port, mark: 0x1234 }));
    await connected(client);
    expect(getMark(client)).toBe(0x1234);
    setMark(client, 0xffffffff);
    expect(getMark(client)).toBe(0xffffffff);
    await readAll(client);
  });

  it('binds a transparent listener to an address this host does not have', async () => {
    // The listener accepts nothing here (no TPROXY), but the bind itself is what needs the option.
    const server = await listenFd(
      createListenSocket({ host: '10.123.45.67', port: 0, transparent: true }),
    );
    expect((server.address() as net.AddressInfo).address).toBe('10.123.45.67');
    const server6 = await listenFd(
      createListenSocket({ host: 'fd00:dead::1', port: 0, transparent: true }),
    );
    expect((server6.address() as net.AddressInfo).address).toBe('fd00:dead::1');
    const freebound = await listenFd(
      createListenSocket({ host: '10.123.45.68', port: 0, freebind: true }),
    );
    expect((freebound.address() as net.AddressInfo).address).toBe('10.123.45.68');
  });

  it('binds an outbound socket to a foreign source with IP_TRANSPARENT + IP_FREEBIND', () => {
    const fd = createOutboundSocket({
      localAddress: '10.123.45.67',
      transparent: true,
      freebind: true,
      mark: 0x539,
    });
    expect(getMark(fd)).toBe(0x539);
    const socket = new net.Socket({ fd });
    // Bound but not connected; connecting from the spoofed source is proved in capture.test.ts.
    expect(socket.address()).toMatchObject({ address: '10.123.45.67', family: 'IPv4' });
    socket.destroy();
  });
});
