import { channel } from 'node:diagnostics_channel';
import net from 'node:net';
import { getSystemErrorName } from 'node:util';
import { RedirectError } from './errors.js';
import { callNative, isSupported, loadError, type NativeSocketSpec } from './native.js';

/** Where a socket is created: a namespace path (`/var/run/netns/pod1`, `/proc/<pid>/ns/net`) or an open namespace fd (as ZDS delivers it). */
export type NetnsRef = string | number;

/** Socket options the kernel only honours when set before `bind()`. */
export interface SocketOptionsBeforeBind {
  /** IP_TRANSPARENT / IPV6_TRANSPARENT: accept and bind non-local addresses (TPROXY, spoofed sources). Default false. Needs CAP_NET_ADMIN or CAP_NET_RAW. */
  transparent?: boolean;
  /** IP_FREEBIND / IPV6_FREEBIND: bind an address that is not (yet) configured here. Default false. */
  freebind?: boolean;
  /** SO_MARK packet mark, 0..0xffffffff (ztunnel uses 0x539 so its own traffic skips capture). Default unset. Needs CAP_NET_ADMIN. */
  mark?: number;
  /** Create the socket inside this network namespace (setns on the calling thread, create, setns back, in one synchronous call). Needs CAP_SYS_ADMIN. */
  netns?: NetnsRef;
}

export interface ListenSocketOptions extends SocketOptionsBeforeBind {
  /** Local IP to bind. Default `'0.0.0.0'`; use `'::'` for dual-stack. */
  host?: string;
  /** Default 0 (the kernel picks). */
  port?: number;
  /** Default 511, like Node. */
  backlog?: number;
  /** SO_REUSEPORT: several sockets (an old and a new proxy during handoff) listen on the same port. Default false. */
  reusePort?: boolean;
  /** IPV6_V6ONLY for `'::'`. Default false (dual-stack), like Node. */
  ipv6Only?: boolean;
}

export interface OutboundSocketOptions extends SocketOptionsBeforeBind {
  /** Source address to bind; with `transparent` it may be foreign (the original client's IP). v4-mapped IPv6 (`::ffff:1.2.3.4`) counts as IPv4. Default: none, the kernel picks at connect. */
  localAddress?: string;
  /** Source port. Default 0; with 0 the port is picked at connect time (IP_BIND_ADDRESS_NO_PORT). */
  localPort?: number;
  /** Address family when no `localAddress` says it. Default 4. */
  family?: 4 | 6;
}

export interface ConnectOptions extends Omit<OutboundSocketOptions, 'family'> {
  /** Destination IP literal (no DNS: the socket must be connected in the same tick it is wrapped); v4-mapped counts as IPv4. */
  host: string;
  port: number;
  /** Socket options Node applies after wrapping the fd. */
  noDelay?: boolean;
  keepAlive?: boolean;
  keepAliveInitialDelay?: number;
}

/** Where an accepted connection was originally going. */
export interface OriginalDestination {
  address: string;
  port: number;
  family: 'IPv4' | 'IPv6';
  /** `conntrack`: recovered with SO_ORIGINAL_DST / IP6T_SO_ORIGINAL_DST (REDIRECT/DNAT; for TPROXY or un-NATed traffic the same as the local address). `local`: no conntrack entry (untracked, or conntrack not loaded), so the local address is the answer. */
  source: 'conntrack' | 'local';
}

const socketCreated = channel('mesh:redirect:socket-created');

function invalid(message: string): RedirectError {
  return new RedirectError('ERR_REDIRECT_INVALID_ARGUMENT', message);
}

function checkPort(name: string, port: unknown): number {
  if (!Number.isInteger(port) || (port as number) < 0 || (port as number) > 65535) {
    throw invalid(`${name} must be an integer 0..65535, got ${String(port)}`);
  }
  return port as number;
}

export function checkMark(mark: unknown): number {
  if (!Number.isInteger(mark) || (mark as number) < 0 || (mark as number) > 0xffffffff) {
    throw invalid(`mark must be an integer 0..0xffffffff, got ${String(mark)}`);
  }
  return mark as number;
}

function checkNetns(netns: unknown): NetnsRef | undefined {
  if (netns === undefined) return undefined;
  if (typeof netns === 'string' && netns.length > 0 && !netns.includes('\0')) return netns;
  if (Number.isInteger(netns) && (netns as number) >= 0) return netns as number;
  throw invalid(`netns must be a namespace path or an open fd, got ${String(netns)}`);
}

function checkFd(fd: unknown): number {
  if (!Number.isInteger(fd) || (fd as number) < 0 || (fd as number) > 0x7fffffff) {
    throw invalid(`fd must be a non-negative integer, got ${String(fd)}`);
  }
  return fd as number;
}

/**
 * `::ffff:a.b.c.d` (how a dual-stack listener reports IPv4 peers) as plain IPv4, so an
 * accepted socket's `remoteAddress` can be used as a source or destination directly.
 */
function unmap(address: string): string {
  return /^::ffff:\d+\.\d+\.\d+\.\d+$/i.test(address) ? address.slice(7) : address;
}

function familyOf(name: string, address: string): 4 | 6 {
  const f = net.isIP(address);
  if (f === 0)
    throw invalid(`${name} must be an IP address literal, got ${JSON.stringify(address)}`);
  return f as 4 | 6;
}

function common(opts: SocketOptionsBeforeBind): Omit<NativeSocketSpec, 'family'> {
  const spec: Omit<NativeSocketSpec, 'family'> = {
    transparent: opts.transparent === true,
    freebind: opts.freebind === true,
  };
  if (opts.mark !== undefined) spec.mark = checkMark(opts.mark);
  const netns = checkNetns(opts.netns);
  if (netns !== undefined) spec.netns = netns;
  return spec;
}

/**
 * Creates a bound, listening, non-blocking TCP socket with the options that must precede
 * `bind()`, and returns its fd. Hand it to Node with `server.listen({ fd })`; Node owns and
 * closes it from then on.
 */
export function createListenSocket(options: ListenSocketOptions = {}): number {
  const host = options.host ?? '0.0.0.0';
  const spec: NativeSocketSpec = {
    ...common(options),
    family: familyOf('host', host),
    address: host,
    port: checkPort('port', options.port ?? 0),
    backlog: options.backlog ?? 511,
    reuseAddr: true,
    reusePort: options.reusePort === true,
    ipv6Only: options.ipv6Only === true,
  };
  if (!Number.isInteger(spec.backlog) || (spec.backlog as number) < 0) {
    throw invalid(`backlog must be a non-negative integer, got ${String(options.backlog)}`);
  }
  const fd = callNative('createListenSocket', (b) => b.createListenSocket(spec));
  if (socketCreated.hasSubscribers) {
    socketCreated.publish({ kind: 'listen', fd, host, port: spec.port, netns: spec.netns });
  }
  return fd;
}

/**
 * Creates a non-blocking TCP socket, optionally bound to `localAddress` (which may be foreign
 * with `transparent`), not yet connected, and returns its fd. Connect it with
 * {@link connectSocket}, or yourself with `new net.Socket({ fd }).connect(port, ip)` **in
 * the same tick** and with an IP literal: Node starts reading a wrapped fd on the next turn
 * of the event loop, and an unconnected socket then fails with ENOTCONN.
 */
export function createOutboundSocket(options: OutboundSocketOptions = {}): number {
  const spec: NativeSocketSpec = { ...common(options), family: options.family ?? 4 };
  if (spec.family !== 4 && spec.family !== 6)
    throw invalid(`family must be 4 or 6, got ${String(spec.family)}`);
  if (options.localAddress !== undefined) {
    const local = unmap(options.localAddress);
    spec.family = familyOf('localAddress', local);
    spec.address = local;
    spec.port = checkPort('localPort', options.localPort ?? 0);
  } else if (options.localPort !== undefined) {
    throw invalid('localPort needs localAddress');
  }
  const fd = callNative('createOutboundSocket', (b) => b.createSocket(spec));
  if (socketCreated.hasSubscribers) {
    socketCreated.publish({
      kind: 'outbound',
      fd,
      host: spec.address,
      port: spec.port,
      netns: spec.netns,
    });
  }
  return fd;
}

/**
 * Creates an outbound socket ({@link createOutboundSocket}) and connects it with Node: returns
 * a `net.Socket` that emits `connect` (or `error`) like one from `net.connect()`.
 */
export function connectSocket(options: ConnectOptions): net.Socket {
  const host = unmap(options.host);
  const family = familyOf('host', host);
  const port = checkPort('port', options.port);
  if (port === 0) throw invalid('port must not be 0 for a connection');
  if (
    options.localAddress !== undefined &&
    familyOf('localAddress', unmap(options.localAddress)) !== family
  ) {
    throw invalid('localAddress and host must be of the same address family');
  }
  const { host: _h, port: _p, noDelay, keepAlive, keepAliveInitialDelay, ...rest } = options;
  const fd = createOutboundSocket({ ...rest, family });
  let socket: net.Socket;
  try {
    socket = new net.Socket({ fd });
  } catch (err) {
    closeFd(fd);
    throw err;
  }
  // Same tick, IP literal: see createOutboundSocket.
  socket.connect({ host, port, family });
  if (noDelay !== undefined) socket.setNoDelay(noDelay);
  if (keepAlive) socket.setKeepAlive(true, keepAliveInitialDelay ?? 0);
  return socket;
}

/**
 * Creates a listening server for `options` ({@link createListenSocket}) and resolves once
 * Node listens on it.
 */
export function createTransparentServer(
  options: ListenSocketOptions & { signal?: AbortSignal },
  connectionListener?: (socket: net.Socket) => void,
): Promise<net.Server> {
  const { signal, ...rest } = options;
  if (signal?.aborted) return Promise.reject(signal.reason);
  let fd: number;
  try {
    fd = createListenSocket(rest);
  } catch (err) {
    return Promise.reject(err);
  }
  const server = net.createServer(connectionListener);
  return new Promise((resolve, reject) => {
    const onAbort = () => {
      server.close();
      reject(signal?.reason);
    };
    signal?.addEventListener('abort', onAbort, { once: true });
    server.once('error', (err) => {
      signal?.removeEventListener('abort', onAbort);
      server.close();
      reject(err);
    });
    server.listen({ fd }, () => {
      signal?.removeEventListener('abort', onAbort);
      resolve(server);
    });
  });
}

function closeFd(fd: number): void {
  // A plain net.Socket takes ownership and closes on destroy; cheapest portable close.
  try {
    new net.Socket({ fd }).destroy();
  } catch {
    // not a socket Node can wrap; nothing else holds it
  }
}

/**
 * The file descriptor under a Node `net.Socket` or `net.Server`.
 *
 * This is the package's one use of Node internals (`_handle.fd`): Node has no public way to
 * read a TCP socket's fd. It works for TCP sockets and servers on Linux/macOS; it throws
 * ERR_REDIRECT_NO_FD for a socket that is not connected/listening yet or already closed.
 */
export function socketFd(socket: net.Socket | net.Server): number {
  const handle = (socket as unknown as { _handle?: { fd?: unknown } | null })._handle;
  const fd = handle?.fd;
  if (typeof fd !== 'number' || fd < 0) {
    throw new RedirectError(
      'ERR_REDIRECT_NO_FD',
      'the socket has no file descriptor (not connected or listening yet, already closed, or not a TCP handle)',
    );
  }
  return fd;
}

function resolveFd(target: net.Socket | net.Server | number): number {
  return typeof target === 'number' ? checkFd(target) : socketFd(target);
}

/**
 * Where an accepted connection was going before REDIRECT/DNAT: SO_ORIGINAL_DST for IPv4
 * (also on a dual-stack socket), IP6T_SO_ORIGINAL_DST for IPv6, and the local address when
 * there is no conntrack entry (TPROXY already leaves the destination in place). v4-mapped
 * addresses are reported as plain IPv4.
 */
export function originalDestination(socket: net.Socket | number): OriginalDestination {
  const fd = resolveFd(socket);
  return callNative('originalDestination', (b) => b.originalDestination(fd));
}

/** Sets SO_MARK on an existing socket; later packets carry it. Needs CAP_NET_ADMIN. */
export function setMark(socket: net.Socket | net.Server | number, mark: number): void {
  const fd = resolveFd(socket);
  const m = checkMark(mark);
  callNative('setMark', (b) => b.setMark(fd, m));
}

/** Reads SO_MARK of a socket (no privilege needed). */
export function getMark(socket: net.Socket | net.Server | number): number {
  const fd = resolveFd(socket);
  return callNative('getMark', (b) => b.getMark(fd));
}

/**
 * Identity (inode) of a network namespace: of the calling thread when `path` is omitted, else
 * of the namespace file at `path`. Two equal ids are the same namespace.
 */
export function netnsId(path?: string): number {
  if (path !== undefined && (typeof path !== 'string' || path.length === 0)) {
    throw invalid('path must be a non-empty string');
  }
  return callNative('netnsId', (b) => b.netnsId(path));
}

export type Capability =
  | 'transparent'
  | 'transparent6'
  | 'freebind'
  | 'reusePort'
  | 'mark'
  | 'setns';

/** What this process may do, found by trying each on a throwaway socket (nothing changes). */
export interface Capabilities {
  /** The addon loaded (Linux). When false every other field is false. */
  supported: boolean;
  /** IP_TRANSPARENT (listeners, spoofed sources). */
  transparent: boolean;
  /** IPV6_TRANSPARENT. */
  transparent6: boolean;
  freebind: boolean;
  reusePort: boolean;
  /** SO_MARK. */
  mark: boolean;
  /** Entering another network namespace (`netns` option). */
  setns: boolean;
  /** Reading the original destination needs no privilege: true whenever supported. */
  originalDestination: boolean;
  /** One sentence per capability that is missing, with the errno and what grants it. */
  missing: string[];
}

const grants: Record<Capability, string> = {
  transparent: 'IP_TRANSPARENT needs CAP_NET_ADMIN or CAP_NET_RAW',
  transparent6: 'IPV6_TRANSPARENT needs CAP_NET_ADMIN or CAP_NET_RAW',
  freebind: 'IP_FREEBIND',
  reusePort: 'SO_REUSEPORT',
  mark: 'SO_MARK needs CAP_NET_ADMIN',
  setns: 'setns(CLONE_NEWNET) needs CAP_SYS_ADMIN',
};

/**
 * Says which capture primitives this process may use. Unlike the other calls it does not
 * throw on an unsupported platform: it answers `supported: false`.
 */
export function probeCapabilities(): Capabilities {
  if (!isSupported) {
    return {
      supported: false,
      transparent: false,
      transparent6: false,
      freebind: false,
      reusePort: false,
      mark: false,
      setns: false,
      originalDestination: false,
      missing: [`native addon unavailable: ${loadError?.message ?? 'unknown reason'}`],
    };
  }
  const raw = callNative('probeCapabilities', (b) => b.probe());
  const missing: string[] = [];
  const ok = (name: Capability): boolean => {
    const errno = raw[name];
    if (errno === 0) return true;
    missing.push(`${grants[name]} (${getSystemErrorName(-errno)})`);
    return false;
  };
  return {
    supported: true,
    transparent: ok('transparent'),
    transparent6: ok('transparent6'),
    freebind: ok('freebind'),
    reusePort: ok('reusePort'),
    mark: ok('mark'),
    setns: ok('setns'),
    originalDestination: true,
    missing,
  };
}
