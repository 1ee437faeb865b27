import type { X509Certificate } from 'node:crypto';
import { channel } from 'node:diagnostics_channel';
import { EventEmitter } from 'node:events';
import {
  createSecureServer,
  type Http2SecureServer,
  constants as h2,
  type IncomingHttpHeaders,
  type ServerHttp2Session,
  type ServerHttp2Stream,
} from 'node:http2';
import {
  type AddressInfo,
  type NetConnectOpts,
  connect as netConnect,
  type Server,
  type Socket,
} from 'node:net';
import type { Duplex } from 'node:stream';
import type { TLSSocket } from 'node:tls';
import type { CertificateSource, SpiffeId, WorkloadCertificate } from '@mesh/spiffe';
import { type Authority, tryParseAuthority } from './authority.js';
import { HboneError, toHboneError } from './errors.js';
import { startKeepalive } from './keepalive.js';
import {
  type Http2Tuning,
  localSettings,
  type ResolvedTuning,
  resolveTuning,
  TUNNEL_HIGH_WATER_MARK,
} from './settings.js';
import { raiseHighWaterMark, Splice } from './splice.js';
import { secureContextOptions, spiffeIds, toX509 } from './tls.js';

/** The authenticated client of an HBONE connection. */
export interface PeerInfo {
  /** The first SPIFFE URI SAN of the client's leaf in the server's trust domain. */
  readonly identity: SpiffeId;
  readonly certificate: X509Certificate;
}

/** The HBONE headers ztunnel sends, as received (undefined when absent). */
export interface ConnectHeaders {
  readonly baggage: string | undefined;
  readonly forwarded: string | undefined;
  readonly traceparent: string | undefined;
  readonly xForwardedNetwork: string | undefined;
  /** Every request header, pseudo-headers included. */
  readonly raw: IncomingHttpHeaders;
}

/** What the embedder's `onConnect` sees for each CONNECT stream. */
export interface ConnectRequest {
  readonly peer: PeerInfo;
  /** `:authority` as sent. */
  readonly rawAuthority: string;
  readonly authority: Authority;
  readonly headers: ConnectHeaders;
  /** The local (for redirected traffic: original destination) address of the TCP connection. */
  readonly localAddress: string;
  readonly localPort: number;
  readonly remoteAddress: string;
  readonly remotePort: number;
  /** Aborted when the stream closes or the server is destroyed before the tunnel is up. */
  readonly signal: AbortSignal;
}

export interface DialTarget {
  readonly host: string;
  readonly port: number;
  /** Local address to bind the upstream socket to (e.g. the original client IP when transparent). */
  readonly localAddress?: string;
}

/**
 * Opens the upstream of a tunnel. Resolve once connected; reject to answer 503. The default
 * is `net.connect` with half-open, no-delay and TCP keepalive. Honour `signal` (dial timeout
 * and stream close).
 */
export type ConnectFunction = (
  target: DialTarget,
  context: { request: ConnectRequest; signal: AbortSignal },
) => Promise<Duplex>;

/** The embedder's answer to a CONNECT. */
export type ConnectDecision =
  | {
      readonly type: 'dial';
      readonly host: string;
      readonly port: number;
      readonly localAddress?: string;
      /** Replaces the default TCP dial for this tunnel (transparent sockets, in-memory peers). */
      readonly connect?: ConnectFunction;
      /** `baggage` for the 200 response (destination workload metadata). */
      readonly baggage?: string;
      /** Opaque value carried on the tunnel handle, e.g. policy context for late re-checks. */
      readonly context?: unknown;
    }
  | {
      readonly type: 'refuse';
      /** 400 bad request, 401 policy denial, 503 no workload / no port / upstream failure. */
      readonly status: number;
      readonly reason?: string;
    };

export type ConnectHandler = (
  request: ConnectRequest,
) => ConnectDecision | Promise<ConnectDecision>;

/** A live tunnel on the server: read its counters any time, close it on policy change. */
export class ServerTunnel {
  readonly id: number;
  readonly request: ConnectRequest;
  readonly target: DialTarget;
  readonly context: unknown;
  readonly openedAt: number;
  readonly #splice: Splice;

  /** @internal */
  constructor(
    id: number,
    request: ConnectRequest,
    target: DialTarget,
    context: unknown,
    splice: Splice,
  ) {
    this.id = id;
    this.request = request;
    this.target = target;
    this.context = context;
    this.openedAt = performance.now();
    this.#splice = splice;
  }

  get peer(): PeerInfo {
    return this.request.peer;
  }
  /** Bytes received from the HBONE client and written to the upstream. */
  get bytesReceived(): number {
    return this.#splice.bytesAtoB;
  }
  /** Bytes read from the upstream and sent to the HBONE client. */
  get bytesSent(): number {
    return this.#splice.bytesBtoA;
  }
  /** Resolves once both directions are closed. */
  get closed(): Promise<TunnelCloseInfo> {
    return this.#splice.done.then((r) => ({
      bytesReceived: r.bytesAtoB,
      bytesSent: r.bytesBtoA,
      durationMs: performance.now() - this.openedAt,
      ...(r.error ? { error: toHboneError(r.error, 'tunnel') } : {}),
    }));
  }

  /** Tears the tunnel down now: RST_STREAM to the client, reset to the upstream. */
  destroy(reason?: Error): void {
    this.#splice.destroy(reason);
  }
}

export interface TunnelCloseInfo {
  readonly bytesReceived: number;
  readonly bytesSent: number;
  readonly durationMs: number;
  /** Set when the tunnel ended abnormally (reset, upstream error, destroyed). */
  readonly error?: HboneError;
}

export interface RefusedInfo {
  readonly status: number;
  readonly reason: string;
  /** Absent for 400s decided before the request was parsed. */
  readonly request?: ConnectRequest;
  readonly error?: HboneError;
}

export interface ServerEvents {
  'tunnel-open': [tunnel: ServerTunnel];
  'tunnel-close': [tunnel: ServerTunnel, info: TunnelCloseInfo];
  refused: [info: RefusedInfo];
  /** A connection failed or was dropped: TLS, trust domain, ping timeout, protocol. */
  'connection-error': [error: HboneError, info: { remoteAddress?: string }];
  session: [info: { remoteAddress?: string; peer: PeerInfo }];
}

export type ServerCertificateOption =
  | WorkloadCertificate
  | {
      readonly source: CertificateSource;
      readonly identity: SpiffeId;
      /** How often to ask the source whether the certificate rotated. Default 5 000 ms. */
      readonly refreshIntervalMs?: number;
    };

export interface HboneServerOptions extends Http2Tuning {
  certificate: ServerCertificateOption;
  onConnect: ConnectHandler;
  /** SETTINGS_MAX_CONCURRENT_STREAMS advertised. Default 200. */
  maxConcurrentStreams?: number;
  /** TLS handshake deadline in ms. Default 10 000. */
  handshakeTimeoutMs?: number;
  /** Upstream dial deadline in ms. Default 10 000. */
  connectTimeoutMs?: number;
  /** TCP keepalive idle time on accepted sockets in ms (0 disables). Default 180 000. */
  tcpKeepAliveMs?: number;
}

const channels = {
  tunnelOpen: channel('mesh:hbone:tunnel-open'),
  tunnelClose: channel('mesh:hbone:tunnel-close'),
  tunnelRefused: channel('mesh:hbone:tunnel-refused'),
  connectionError: channel('mesh:hbone:connection-error'),
};

function isWorkloadCertificate(c: ServerCertificateOption): c is WorkloadCertificate {
  return typeof (c as WorkloadCertificate).leaf === 'string';
}

function header(headers: IncomingHttpHeaders, name: string): string | undefined {
  const v = headers[name];
  return Array.isArray(v) ? v.join(', ') : v;
}

let nextTunnelId = 1;

/**
 * An HBONE listener: mutual TLS 1.3 + HTTP/2, one CONNECT stream per tunnel. The embedder
 * decides per stream (policy, destination) in `onConnect`.
 */
export class HboneServer extends EventEmitter<ServerEvents> {
  readonly #options: HboneServerOptions;
  readonly #tuning: ResolvedTuning;
  readonly #server: Http2SecureServer;
  readonly #sessions = new Set<ServerHttp2Session>();
  readonly #peers = new WeakMap<ServerHttp2Session, PeerInfo>();
  readonly #sockets = new Set<Duplex>();
  /** Accepted connections that have not yet become a session or reported a TLS error. */
  readonly #unsettled = new WeakSet<object>();
  readonly #tunnels = new Set<ServerTunnel>();
  readonly #pending = new Set<AbortController>();
  #certificate: WorkloadCertificate | undefined;
  #ready: Promise<void>;
  #refresh: NodeJS.Timeout | undefined;
  #streams = 0;
  #tunnelsTotal = 0;
  #refusedTotal = 0;
  #closing: Promise<void> | undefined;
  #destroyed = false;
  #listening = false;

  constructor(options: HboneServerOptions) {
    super();
    if (typeof options?.onConnect !== 'function') {
      throw new HboneError('ERR_HBONE_OPTIONS_INVALID', 'onConnect must be a function');
    }
    if (!options.certificate) {
      throw new HboneError('ERR_HBONE_OPTIONS_INVALID', 'certificate is required');
    }
    this.#options = options;
    const maxStreams = options.maxConcurrentStreams ?? 200;
    this.#tuning = resolveTuning(options, { maxHeaderListSize: 64 * 1024, maxStreams });
    const initial = isWorkloadCertificate(options.certificate) ? options.certificate : undefined;
    this.#server = createSecureServer({
      ...(initial ? secureContextOptions(initial) : {}),
      requestCert: true,
      rejectUnauthorized: true,
      ALPNProtocols: ['h2'],
      allowHTTP1: false,
      handshakeTimeout: options.handshakeTimeoutMs ?? 10_000,
      settings: localSettings(this.#tuning, {
        maxConcurrentStreams: maxStreams,
        enableConnectProtocol: false,
      }),
      maxSessionMemory: this.#tuning.maxSessionMemory,
      // Applies until the client's SETTINGS arrive.
      peerMaxConcurrentStreams: 100,
      unknownProtocolTimeout: 1000,
    } as Parameters<typeof createSecureServer>[0]);
    this.#certificate = initial;
    this.#ready = initial ? Promise.resolve() : this.#loadFromSource();
    this.#ready.catch(() => {});

    this.#server.on('connection', (socket: Socket) => this.#onTcp(socket));
    this.#server.on('tlsClientError', (err, socket) => {
      this.#settle(socket);
      this.#connectionError(toHboneError(err, 'TLS handshake'), socket.remoteAddress);
    });
    this.#server.on('unknownProtocol', (socket) => {
      this.#settle(socket);
      this.#connectionError(
        new HboneError('ERR_HBONE_PROTOCOL', 'client did not negotiate ALPN h2'),
        socket.remoteAddress,
      );
      socket.destroy();
    });
    this.#server.on('session', (session) => this.#onSession(session));
    this.#server.on('stream', (stream, headers) => {
      void this.#onStream(stream, headers);
    });
    // Session errors reach the server as 'sessionError'; they are reported per session.
    this.#server.on('sessionError', () => {});
  }

  /** Listens on `port` (0 = any) and resolves with the bound address. */
  async listen(
    options: { port?: number; host?: string; signal?: AbortSignal; backlog?: number } = {},
  ): Promise<AddressInfo> {
    options.signal?.throwIfAborted();
    await this.#ready;
    this.#assertOpen();
    await new Promise<void>((resolve, reject) => {
      const onError = (err: Error) => reject(toHboneError(err, 'listen'));
      this.#server.once('error', onError);
      this.#server.listen(
        { port: options.port ?? 0, host: options.host, backlog: options.backlog ?? 1024 },
        () => {
          this.#server.off('error', onError);
          resolve();
        },
      );
    });
    this.#listening = true;
    return this.#server.address() as AddressInfo;
  }

  /** The bound address once listening. */
  get address(): AddressInfo | undefined {
    return (this.#server.address() as AddressInfo | null) ?? undefined;
  }

  /**
   * Serves an already-accepted connection (raw TCP or any duplex, TLS not yet started), e.g.
   * from a listener created natively or a stream of an outer tunnel (double HBONE).
   */
  accept(socket: Duplex): void {
    if (this.#closing || this.#destroyed) {
      socket.destroy();
      return;
    }
    if (this.#certificate) {
      this.#server.emit('connection', socket);
      return;
    }
    this.#ready.then(
      () => this.accept(socket),
      () => socket.destroy(),
    );
  }

  /** Routes every connection accepted by `server` into this HBONE server. */
  attach(server: Server): void {
    server.on('connection', (socket) => this.accept(socket));
  }

  /** Replaces the served certificate; live connections keep theirs. */
  setCertificate(certificate: WorkloadCertificate): void {
    this.#server.setSecureContext(secureContextOptions(certificate));
    this.#certificate = certificate;
  }

  /** The certificate new handshakes use. */
  get certificate(): WorkloadCertificate | undefined {
    return this.#certificate;
  }

  get stats(): {
    sessions: number;
    streams: number;
    tunnels: number;
    tunnelsTotal: number;
    refusedTotal: number;
  } {
    return {
      sessions: this.#sessions.size,
      streams: this.#streams,
      tunnels: this.#tunnels.size,
      tunnelsTotal: this.#tunnelsTotal,
      refusedTotal: this.#refusedTotal,
    };
  }

  /** Live tunnels (e.g. to re-check policy and `destroy()` the ones now denied). */
  tunnels(): IterableIterator<ServerTunnel> {
    return this.#tunnels.values();
  }

  /**
   * Drains: stops accepting, sends GOAWAY on every connection, lets tunnels finish for
   * `graceMs` (default 5 000), then cancels what is left. Idempotent.
   */
  close(options: { graceMs?: number } = {}): Promise<void> {
    this.#closing ??= this.#drain(options.graceMs ?? 5000);
    return this.#closing;
  }

  /** Closes everything now: listener, connections, tunnels, pending dials. */
  destroy(): void {
    if (this.#destroyed) return;
    this.#destroyed = true;
    if (this.#refresh) clearInterval(this.#refresh);
    if (this.#listening) this.#server.close();
    this.#listening = false;
    for (const c of this.#pending) c.abort(new HboneError('ERR_HBONE_CLOSED', 'server destroyed'));
    for (const t of this.#tunnels)
      t.destroy(new HboneError('ERR_HBONE_CLOSED', 'server destroyed'));
    for (const s of this.#sessions) s.destroy();
    for (const s of this.#sockets) s.destroy();
  }

  async #drain(graceMs: number): Promise<void> {
    if (this.#refresh) clearInterval(this.#refresh);
    const stopped = this.#listening
      ? new Promise<void>((resolve) => this.#server.close(() => resolve()))
      : Promise.resolve();
    this.#listening = false;
    for (const s of this.#sessions) s.close();
    const idle = new Promise<void>((resolve) => {
      const check = () => {
        if (this.#sessions.size === 0) resolve();
        else setTimeout(check, 25).unref();
      };
      check();
    });
    let timer: NodeJS.Timeout | undefined;
    const grace = new Promise<void>((resolve) => {
      timer = setTimeout(resolve, graceMs);
    });
    await Promise.race([idle, grace]);
    clearTimeout(timer);
    this.destroy();
    await stopped;
  }

  #assertOpen(): void {
    if (this.#closing || this.#destroyed) {
      throw new HboneError('ERR_HBONE_CLOSED', 'the HBONE server is closed');
    }
  }

  async #loadFromSource(): Promise<void> {
    const opt = this.#options.certificate as Exclude<ServerCertificateOption, WorkloadCertificate>;
    const fetch = async () => {
      let cert: WorkloadCertificate;
      try {
        cert = await opt.source.getCertificate(opt.identity);
      } catch (err) {
        throw new HboneError(
          'ERR_HBONE_CERTIFICATE',
          `cannot get a certificate for ${opt.identity}: ${(err as Error).message}`,
          { cause: err },
        );
      }
      if (cert !== this.#certificate && !this.#destroyed) this.setCertificate(cert);
    };
    await fetch();
    this.#refresh = setInterval(() => {
      fetch().catch((err: HboneError) => this.#connectionError(err, undefined));
    }, opt.refreshIntervalMs ?? 5000);
    this.#refresh.unref();
  }

  #connectionError(err: HboneError, remoteAddress: string | undefined): void {
    const info = remoteAddress ? { remoteAddress } : {};
    if (channels.connectionError.hasSubscribers) {
      channels.connectionError.publish({ error: err, ...info });
    }
    this.emit('connection-error', err, info);
  }

  #onTcp(socket: Socket): void {
    if (typeof socket.setNoDelay === 'function') socket.setNoDelay(true);
    const keepAlive = this.#options.tcpKeepAliveMs ?? 180_000;
    if (keepAlive > 0 && typeof socket.setKeepAlive === 'function') {
      socket.setKeepAlive(true, keepAlive);
    }
    this.#sockets.add(socket);
    this.#unsettled.add(socket);
    const remoteAddress = socket.remoteAddress;
    socket.once('close', () => {
      this.#sockets.delete(socket);
      // Node verifies client chains after the handshake and drops failures silently
      // (expired, unknown CA); this is where they become visible.
      if (this.#unsettled.has(socket) && !this.#destroyed) {
        this.#connectionError(
          new HboneError(
            'ERR_HBONE_TLS',
            'connection closed before HTTP/2 started: client certificate rejected (expired, untrusted chain) or handshake aborted',
          ),
          remoteAddress,
        );
      }
    });
    // Sockets that error before TLS starts would otherwise be unhandled.
    socket.on('error', () => {});
  }

  /** Marks the accepted connection under a TLS socket as accounted for. */
  #settle(tlsSocket: TLSSocket): void {
    const parent = (tlsSocket as { _parent?: { stream?: unknown } })._parent;
    if (parent) {
      this.#unsettled.delete(parent);
      // Non-socket duplexes are wrapped by Node (JSStreamSocket) and reachable as `.stream`.
      if (parent.stream && typeof parent.stream === 'object') this.#unsettled.delete(parent.stream);
    }
  }

  #onSession(session: ServerHttp2Session): void {
    const tlsSocket = session.socket as TLSSocket;
    this.#settle(tlsSocket);
    const remoteAddress = tlsSocket.remoteAddress;
    session.on('error', (err) =>
      this.#connectionError(toHboneError(err, 'session'), remoteAddress),
    );
    if (this.#destroyed || this.#closing) {
      session.destroy();
      return;
    }
    const cert = toX509(tlsSocket.getPeerX509Certificate?.());
    const trustDomain = this.#certificate?.identity.trustDomain;
    const identity = cert
      ? spiffeIds(cert).find((id) => id.trustDomain === trustDomain)
      : undefined;
    if (!cert || !identity) {
      this.#connectionError(
        new HboneError(
          'ERR_HBONE_PEER_TRUST_DOMAIN',
          `client certificate has no SPIFFE ID in trust domain ${trustDomain}` +
            (cert ? ` (URI SANs: ${cert.subjectAltName ?? 'none'})` : ''),
        ),
        remoteAddress,
      );
      session.destroy();
      return;
    }
    const peer: PeerInfo = { identity, certificate: cert };
    this.#peers.set(session, peer);
    this.#sessions.add(session);
    session.once('close', () => this.#sessions.delete(session));
    try {
      session.setLocalWindowSize(this.#tuning.connectionWindowSize);
    } catch {
      // Session already closing.
    }
    startKeepalive(session, this.#tuning.pingIntervalMs, this.#tuning.pingTimeoutMs, (err) => {
      this.#connectionError(err, remoteAddress);
      // ztunnel: abrupt shutdown on ping failure.
      session.goaway(h2.NGHTTP2_NO_ERROR);
      session.destroy();
    });
    this.emit('session', remoteAddress ? { remoteAddress, peer } : { peer });
  }

  #refuse(
    stream: ServerHttp2Stream,
    status: number,
    reason: string,
    request?: ConnectRequest,
    error?: HboneError,
  ): void {
    this.#refusedTotal++;
    if (!stream.destroyed && !stream.headersSent) {
      try {
        stream.respond({ ':status': status }, { endStream: true });
      } catch {
        stream.destroy();
      }
    }
    const info: RefusedInfo = {
      status,
      reason,
      ...(request ? { request } : {}),
      ...(error ? { error } : {}),
    };
    if (channels.tunnelRefused.hasSubscribers) channels.tunnelRefused.publish(info);
    this.emit('refused', info);
  }

  async #onStream(stream: ServerHttp2Stream, headers: IncomingHttpHeaders): Promise<void> {
    this.#streams++;
    stream.once('close', () => this.#streams--);
    stream.on('error', () => {});
    const session = stream.session as ServerHttp2Session | undefined;
    const peer = session ? this.#peers.get(session) : undefined;
    if (!session || !peer) {
      stream.close(h2.NGHTTP2_REFUSED_STREAM);
      return;
    }
    if (headers[':method'] !== 'CONNECT') {
      return this.#refuse(stream, 400, `method ${headers[':method']} is not CONNECT`);
    }
    if (headers[':protocol'] !== undefined) {
      return this.#refuse(stream, 400, 'extended CONNECT is not HBONE');
    }
    const rawAuthority = header(headers, ':authority') ?? '';
    const authority = tryParseAuthority(rawAuthority);
    if (!authority) {
      return this.#refuse(
        stream,
        400,
        `malformed authority ${JSON.stringify(rawAuthority.slice(0, 300))}`,
      );
    }
    const socket = session.socket;
    const abort = new AbortController();
    this.#pending.add(abort);
    const onClose = () =>
      abort.abort(new HboneError('ERR_HBONE_CONNECTION_CLOSED', 'stream closed'));
    stream.once('close', onClose);
    const request: ConnectRequest = {
      peer,
      rawAuthority,
      authority,
      headers: {
        baggage: header(headers, 'baggage'),
        forwarded: header(headers, 'forwarded'),
        traceparent: header(headers, 'traceparent'),
        xForwardedNetwork: header(headers, 'x-forwarded-network'),
        raw: headers,
      },
      localAddress: socket.localAddress ?? '',
      localPort: socket.localPort ?? 0,
      remoteAddress: socket.remoteAddress ?? '',
      remotePort: socket.remotePort ?? 0,
      signal: abort.signal,
    };

    let upstream: Duplex | undefined;
    let decision: ConnectDecision;
    try {
      try {
        decision = await this.#options.onConnect(request);
      } catch (err) {
        // A stream that went away while the embedder decided needs no answer.
        if (stream.destroyed || abort.signal.aborted) return;
        return this.#refuse(
          stream,
          503,
          `onConnect failed: ${(err as Error)?.message}`,
          request,
          toHboneError(err, 'onConnect'),
        );
      }
      if (stream.destroyed || abort.signal.aborted) return;
      if (decision.type === 'refuse') {
        return this.#refuse(
          stream,
          decision.status,
          decision.reason ?? `refused with ${decision.status}`,
          request,
        );
      }
      const target: DialTarget = {
        host: decision.host,
        port: decision.port,
        ...(decision.localAddress ? { localAddress: decision.localAddress } : {}),
      };
      const connect = decision.connect ?? defaultConnect;
      const signal = AbortSignal.any([
        abort.signal,
        AbortSignal.timeout(this.#options.connectTimeoutMs ?? 10_000),
      ]);
      try {
        upstream = await connect(target, { request, signal });
      } catch (err) {
        const e = new HboneError(
          'ERR_HBONE_UPSTREAM',
          `connect to ${target.host}:${target.port} failed: ${(err as Error)?.message ?? err}`,
          { cause: err },
        );
        return this.#refuse(stream, 503, e.message, request, e);
      }
      if (stream.destroyed || abort.signal.aborted) {
        upstream.destroy();
        return;
      }
      stream.respond(
        decision.baggage ? { ':status': 200, baggage: decision.baggage } : { ':status': 200 },
      );
      raiseHighWaterMark(stream);
      const splice = new Splice(stream, upstream);
      const tunnel = new ServerTunnel(nextTunnelId++, request, target, decision.context, splice);
      this.#tunnels.add(tunnel);
      this.#tunnelsTotal++;
      if (channels.tunnelOpen.hasSubscribers) channels.tunnelOpen.publish({ tunnel });
      this.emit('tunnel-open', tunnel);
      void tunnel.closed.then((info) => {
        this.#tunnels.delete(tunnel);
        if (channels.tunnelClose.hasSubscribers) channels.tunnelClose.publish({ tunnel, ...info });
        this.emit('tunnel-close', tunnel, info);
      });
    } finally {
      this.#pending.delete(abort);
      stream.off('close', onClose);
    }
  }
}

/** The default upstream dial: TCP with half-open, no-delay, keepalive and big buffers. */
export const defaultConnect: ConnectFunction = (target, { signal }) =>
  new Promise<Duplex>((resolve, reject) => {
    signal.throwIfAborted();
    const socket = netConnect({
      host: target.host,
      port: target.port,
      ...(target.localAddress ? { localAddress: target.localAddress } : {}),
      allowHalfOpen: true,
      noDelay: true,
      keepAlive: true,
      keepAliveInitialDelay: 180_000,
      // net.Socket hands this to its Duplex constructor.
      highWaterMark: TUNNEL_HIGH_WATER_MARK,
    } as NetConnectOpts);
    const onAbort = () => {
      socket.destroy();
      reject(signal.reason);
    };
    signal.addEventListener('abort', onAbort, { once: true });
    socket.once('connect', () => {
      signal.removeEventListener('abort', onAbort);
      socket.removeListener('error', reject);
      resolve(socket);
    });
    socket.once('error', (err) => {
      signal.removeEventListener('abort', onAbort);
      reject(err);
    });
  });
