import { X509Certificate } from 'node:crypto';
import { channel } from 'node:diagnostics_channel';
import { EventEmitter } from 'node:events';
import {
  type ClientHttp2Session,
  type ClientHttp2Stream,
  constants as h2,
  connect as h2connect,
  type IncomingHttpHeaders,
  type OutgoingHttpHeaders,
} from 'node:http2';
import { connect as netConnect, type Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import { type PeerCertificate, connect as tlsConnect } from 'node:tls';
import { type CertificateSource, SpiffeId, type WorkloadCertificate } from '@mesh/spiffe';
import { formatAuthority, normalizeAuthority } from './authority.js';
import { HboneError, toHboneError } from './errors.js';
import { formatForwarded, newTraceparent } from './headers.js';
import { startKeepalive } from './keepalive.js';
import { type Http2Tuning, localSettings, type ResolvedTuning, resolveTuning } from './settings.js';
import { raiseHighWaterMark, Splice, type SpliceResult } from './splice.js';
import { cachedSecureContext, spiffeIds } from './tls.js';
import { untilEvent } from './wait.js';

/** The well-known HBONE port. */
export const HBONE_PORT = 15008;

/**
 * Creates the TCP socket to the next hop (e.g. with SO_MARK set natively). May return a socket
 * that is still connecting; the client waits for `connect`.
 */
export type SocketFactory = (options: {
  host: string;
  port: number;
  localAddress?: string;
  signal: AbortSignal;
}) => Duplex | Promise<Duplex>;

export interface HboneClientOptions extends Http2Tuning {
  /**
   * Where client certificates come from: a `CertificateSource` (asked per source identity,
   * e.g. a SecretManager) or one fixed certificate.
   */
  certificates: CertificateSource | WorkloadCertificate;
  /** Streams per pooled connection before another connection is opened. Default 100. */
  maxStreamsPerConnection?: number;
  /** Idle pooled connections are released after this many ms. Default 300 000. */
  idleTimeoutMs?: number;
  /** Deadline for TCP connect, and again for TLS + HTTP/2 setup, in ms. Default 10 000. */
  dialTimeoutMs?: number;
  /** Default local address to bind outgoing sockets to (overridden by `sourceIp`). */
  localAddress?: string;
  /** Replaces `net.connect` for next-hop sockets. */
  createSocket?: SocketFactory;
  /** TCP keepalive idle time in ms (0 disables). Default 180 000. */
  tcpKeepAliveMs?: number;
}

export interface NextHop {
  readonly host: string;
  /** Default 15008. */
  readonly port?: number;
}

export interface ConnectOptions {
  /** `:authority`: the final destination as `ip:port`, `[v6]:port`, `host:port`, or parts. */
  authority: string | { host: string; port: number };
  /** The HBONE server to connect to (destination ztunnel, waypoint or gateway). */
  via: NextHop;
  /** Our identity: selects the client certificate. */
  sourceIdentity: SpiffeId;
  /** The server must present one of these SPIFFE IDs. */
  expectedIdentities: readonly (SpiffeId | string)[];
  /** Local IP to connect from (part of the pool key; used with transparent sockets). */
  sourceIp?: string;
  /** `baggage` header (source workload metadata). */
  baggage?: string;
  /** `forwarded` header: a raw value, or the client address (+ service host) to render. */
  forwarded?: string | { for: { address: string; port: number }; host?: string };
  /** `traceparent`; a fresh one is generated when absent. */
  traceparent?: string;
  /** `x-forwarded-network`: only on the inner CONNECT of double HBONE. */
  forwardedNetwork?: string;
  /** Extra request headers. */
  headers?: OutgoingHttpHeaders;
  /**
   * Run the HTTP/2 connection inside this duplex (an outer tunnel: double HBONE) instead of
   * dialling `via`. Never pooled.
   */
  through?: Duplex;
  signal?: AbortSignal;
}

/** An established tunnel. `stream` is the Duplex carrying the bytes. */
export class ClientTunnel {
  readonly stream: ClientHttp2Stream;
  readonly authority: string;
  readonly traceparent: string;
  readonly responseHeaders: IncomingHttpHeaders;
  /** The server's SPIFFE identity (the expected one it presented). */
  readonly peerIdentity: SpiffeId;
  readonly peerCertificate: X509Certificate;

  /** @internal */
  constructor(
    stream: ClientHttp2Stream,
    authority: string,
    traceparent: string,
    responseHeaders: IncomingHttpHeaders,
    peer: { identity: SpiffeId; certificate: X509Certificate },
  ) {
    this.stream = stream;
    this.authority = authority;
    this.traceparent = traceparent;
    this.responseHeaders = responseHeaders;
    this.peerIdentity = peer.identity;
    this.peerCertificate = peer.certificate;
  }

  /** Response `baggage` (destination metadata), when the server sent one. */
  get baggage(): string | undefined {
    const b = this.responseHeaders.baggage;
    return Array.isArray(b) ? b.join(', ') : b;
  }

  /**
   * Copies bytes between this tunnel and `socket` both ways with backpressure and
   * half-close; resolves when both directions are done. Counters are live on the returned
   * splice (`bytesAtoB` = tunnel -> socket).
   */
  pipe(socket: Duplex): Splice {
    return new Splice(this.stream, socket);
  }

  /** Aborts the tunnel (RST_STREAM CANCEL). */
  destroy(): void {
    if (!this.stream.destroyed) this.stream.close(h2.NGHTTP2_CANCEL);
  }
}

interface Connection {
  readonly key: string;
  readonly session: ClientHttp2Session;
  readonly peer: { identity: SpiffeId; certificate: X509Certificate };
  active: number;
  maxStreams: number;
  dead: boolean;
  idleTimer: NodeJS.Timeout | undefined;
}

export interface ClientEvents {
  'connection-open': [info: { key: string; nextHop: string; peer: SpiffeId }];
  'connection-close': [info: { key: string; nextHop: string; error?: HboneError }];
}

const channels = {
  connectionOpen: channel('mesh:hbone:client-connection-open'),
  connectionClose: channel('mesh:hbone:client-connection-close'),
};

function isWorkloadCertificate(c: unknown): c is WorkloadCertificate {
  return typeof (c as WorkloadCertificate).leaf === 'string';
}

function raceSignal<T>(promise: Promise<T>, signal: AbortSignal | undefined): Promise<T> {
  if (!signal) return promise;
  signal.throwIfAborted();
  return new Promise<T>((resolve, reject) => {
    const onAbort = () => reject(signal.reason);
    signal.addEventListener('abort', onAbort, { once: true });
    promise.then(
      (v) => {
        signal.removeEventListener('abort', onAbort);
        resolve(v);
      },
      (e) => {
        signal.removeEventListener('abort', onAbort);
        reject(e);
      },
    );
  });
}

/**
 * HBONE client with ztunnel's connection pool: connections keyed by (source identity,
 * expected identities, next hop, source IP), up to 100 streams each, one dial at a time
 * per key, idle release after 5 minutes.
 */
export class HboneClient extends EventEmitter<ClientEvents> {
  readonly #options: HboneClientOptions;
  readonly #tuning: ResolvedTuning;
  readonly #maxStreams: number;
  readonly #pool = new Map<string, Connection[]>();
  readonly #dialing = new Map<string, Promise<Connection>>();
  readonly #unpooled = new Set<ClientHttp2Session>();
  readonly #lifetime = new AbortController();
  #dials = 0;
  #closing: Promise<void> | undefined;

  constructor(options: HboneClientOptions) {
    super();
    if (!options?.certificates) {
      throw new HboneError('ERR_HBONE_OPTIONS_INVALID', 'certificates is required');
    }
    this.#options = options;
    this.#maxStreams = options.maxStreamsPerConnection ?? 100;
    if (!Number.isInteger(this.#maxStreams) || this.#maxStreams < 1) {
      throw new HboneError(
        'ERR_HBONE_OPTIONS_INVALID',
        `maxStreamsPerConnection must be a positive integer, got ${this.#maxStreams}`,
      );
    }
    this.#tuning = resolveTuning(options, {
      maxHeaderListSize: 16 * 1024,
      maxStreams: this.#maxStreams,
    });
  }

  get stats(): { connections: number; streams: number; dialsTotal: number } {
    let connections = this.#unpooled.size;
    let streams = this.#unpooled.size;
    for (const list of this.#pool.values()) {
      connections += list.length;
      for (const c of list) streams += c.active;
    }
    return { connections, streams, dialsTotal: this.#dials };
  }

  /** Opens a tunnel to `authority` through the HBONE server `via`. */
  async connect(options: ConnectOptions): Promise<ClientTunnel> {
    options.signal?.throwIfAborted();
    if (this.#closing) throw new HboneError('ERR_HBONE_CLOSED', 'the HBONE client is closed');
    const authority = normalizeAuthority(options.authority);
    const expected = this.#expected(options.expectedIdentities);
    if (options.through) return this.#connectThrough(options, authority, expected);
    const key = this.#key(options, expected);
    for (let attempt = 0; ; attempt++) {
      const conn = await this.#acquire(key, options, expected);
      try {
        return await this.#request(conn.session, conn.peer, options, authority, conn);
      } catch (err) {
        // A refused stream was never processed: retry once on another connection.
        if (attempt === 0 && err instanceof HboneError && err.code === 'ERR_HBONE_REFUSED_STREAM') {
          conn.dead = true;
          continue;
        }
        throw err;
      }
    }
  }

  /**
   * Double HBONE: a tunnel to `outer.authority` through a gateway, then a second mTLS +
   * HTTP/2 CONNECT to `inner.authority` inside it (end-to-end to the destination).
   */
  async connectDouble(
    outer: ConnectOptions,
    inner: Omit<ConnectOptions, 'via' | 'through'>,
  ): Promise<ClientTunnel> {
    const tunnel = await this.connect(outer);
    try {
      return await this.connect({ ...inner, via: outer.via, through: tunnel.stream });
    } catch (err) {
      tunnel.destroy();
      throw err;
    }
  }

  /** Stops pooling; lets open tunnels finish (GOAWAY-free graceful close of connections). */
  close(): Promise<void> {
    this.#closing ??= (async () => {
      const sessions: ClientHttp2Session[] = [...this.#unpooled];
      for (const list of this.#pool.values()) for (const c of list) sessions.push(c.session);
      this.#pool.clear();
      await Promise.all(
        sessions.map(
          (s) =>
            new Promise<void>((resolve) => {
              if (s.destroyed) return resolve();
              s.close(() => resolve());
            }),
        ),
      );
    })();
    return this.#closing;
  }

  /** Closes every connection now. */
  destroy(): void {
    this.#closing ??= Promise.resolve();
    this.#lifetime.abort(new HboneError('ERR_HBONE_CLOSED', 'the HBONE client was destroyed'));
    for (const list of this.#pool.values()) for (const c of list) c.session.destroy();
    for (const s of this.#unpooled) s.destroy();
    this.#pool.clear();
  }

  #expected(ids: readonly (SpiffeId | string)[]): Set<string> {
    if (!Array.isArray(ids) || ids.length === 0) {
      throw new HboneError(
        'ERR_HBONE_OPTIONS_INVALID',
        'expectedIdentities must list at least one SPIFFE ID',
      );
    }
    const out = new Set<string>();
    for (const id of ids) {
      const parsed = typeof id === 'string' ? SpiffeId.tryParse(id) : id;
      if (!parsed) {
        throw new HboneError('ERR_HBONE_OPTIONS_INVALID', `not a SPIFFE ID: ${String(id)}`);
      }
      out.add(parsed.toString());
    }
    return out;
  }

  #key(options: ConnectOptions, expected: Set<string>): string {
    return [
      options.sourceIdentity.toString(),
      [...expected].sort().join(','),
      formatAuthority(options.via.host, options.via.port ?? HBONE_PORT),
      options.sourceIp ?? '',
    ].join('|');
  }

  #usable(c: Connection): boolean {
    return !c.dead && !c.session.closed && !c.session.destroyed && c.active < c.maxStreams;
  }

  async #acquire(key: string, options: ConnectOptions, expected: Set<string>): Promise<Connection> {
    for (;;) {
      options.signal?.throwIfAborted();
      if (this.#closing) throw new HboneError('ERR_HBONE_CLOSED', 'the HBONE client is closed');
      const list = this.#pool.get(key);
      if (list) {
        for (const c of list) {
          if (this.#usable(c)) {
            c.active++;
            if (c.idleTimer) {
              clearTimeout(c.idleTimer);
              c.idleTimer = undefined;
            }
            return c;
          }
        }
      }
      let dial = this.#dialing.get(key);
      if (!dial) {
        // Single flight per key: everyone else waits for this dial instead of storming.
        dial = this.#dialPooled(key, options, expected);
        this.#dialing.set(key, dial);
        const d = dial;
        dial.then(
          () => this.#dialing.delete(key),
          () => this.#dialing.delete(key),
        );
        d.catch(() => {});
      }
      await raceSignal(dial, options.signal);
    }
  }

  async #dialPooled(
    key: string,
    options: ConnectOptions,
    expected: Set<string>,
  ): Promise<Connection> {
    const { session, peer } = await this.#dial(options, expected, undefined);
    const conn: Connection = {
      key,
      session,
      peer,
      active: 0,
      maxStreams: this.#peerLimit(session),
      dead: false,
      idleTimer: undefined,
    };
    const remove = () => {
      conn.dead = true;
      if (conn.idleTimer) clearTimeout(conn.idleTimer);
      const list = this.#pool.get(key);
      if (!list) return;
      const i = list.indexOf(conn);
      if (i >= 0) list.splice(i, 1);
      if (list.length === 0) this.#pool.delete(key);
    };
    session.on('remoteSettings', () => {
      conn.maxStreams = this.#peerLimit(session);
    });
    // A GOAWAY'd connection finishes its streams but never takes new ones.
    session.on('goaway', remove);
    session.once('close', remove);
    const list = this.#pool.get(key);
    if (list) list.push(conn);
    else this.#pool.set(key, [conn]);
    this.#armIdle(conn);
    return conn;
  }

  #peerLimit(session: ClientHttp2Session): number {
    const peerMax = session.remoteSettings.maxConcurrentStreams ?? 100;
    return Math.max(1, Math.min(this.#maxStreams, peerMax));
  }

  #armIdle(conn: Connection): void {
    if (conn.active > 0 || conn.dead) return;
    conn.idleTimer = setTimeout(() => {
      conn.dead = true;
      conn.session.close();
    }, this.#options.idleTimeoutMs ?? 300_000);
    conn.idleTimer.unref();
  }

  async #certificate(identity: SpiffeId): Promise<WorkloadCertificate> {
    const certs = this.#options.certificates;
    let cert: WorkloadCertificate;
    try {
      cert = isWorkloadCertificate(certs)
        ? certs
        : await certs.getCertificate(identity, { signal: this.#lifetime.signal });
    } catch (err) {
      throw new HboneError(
        'ERR_HBONE_CERTIFICATE',
        `no certificate for ${identity}: ${(err as Error)?.message ?? err}`,
        { cause: err },
      );
    }
    if (!cert.identity.equals(identity)) {
      throw new HboneError(
        'ERR_HBONE_CERTIFICATE',
        `certificate is for ${cert.identity}, not the requested source identity ${identity}`,
      );
    }
    return cert;
  }

  async #openSocket(host: string, port: number, localAddress: string | undefined): Promise<Duplex> {
    const signal = AbortSignal.any([
      this.#lifetime.signal,
      AbortSignal.timeout(this.#options.dialTimeoutMs ?? 10_000),
    ]);
    const timeoutError = () =>
      new HboneError(
        'ERR_HBONE_DIAL_TIMEOUT',
        `connection to ${formatAuthority(host, port)} timed out, maybe a NetworkPolicy is blocking HBONE port ${HBONE_PORT}`,
      );
    const keepAlive = this.#options.tcpKeepAliveMs ?? 180_000;
    let socket: Duplex;
    try {
      socket = this.#options.createSocket
        ? await this.#options.createSocket({
            host,
            port,
            signal,
            ...(localAddress ? { localAddress } : {}),
          })
        : netConnect({
            host,
            port,
            noDelay: true,
            keepAlive: keepAlive > 0,
            keepAliveInitialDelay: keepAlive,
            ...(localAddress ? { localAddress } : {}),
          });
    } catch (err) {
      if (signal.aborted && !this.#lifetime.signal.aborted) throw timeoutError();
      throw toHboneError(err, `dial ${formatAuthority(host, port)}`);
    }
    const net = socket as Socket;
    if (typeof net.setNoDelay === 'function') net.setNoDelay(true);
    if (!net.connecting) return socket;
    return new Promise<Duplex>((resolve, reject) => {
      const done = (err?: unknown) => {
        signal.removeEventListener('abort', onAbort);
        net.off('connect', onConnect);
        net.off('error', done);
        if (err === undefined) return resolve(net);
        net.destroy();
        reject(err);
      };
      const onConnect = () => done();
      const onAbort = () =>
        done(this.#lifetime.signal.aborted ? this.#lifetime.signal.reason : timeoutError());
      net.once('connect', onConnect);
      net.once('error', (err) => done(toHboneError(err, `dial ${formatAuthority(host, port)}`)));
      signal.addEventListener('abort', onAbort, { once: true });
    });
  }

  async #dial(
    options: ConnectOptions,
    expected: Set<string>,
    through: Duplex | undefined,
  ): Promise<{ session: ClientHttp2Session; peer: Connection['peer'] }> {
    this.#dials++;
    const cert = await this.#certificate(options.sourceIdentity);
    const context = cachedSecureContext(cert);
    const host = options.via.host;
    const port = options.via.port ?? HBONE_PORT;
    const raw =
      through ??
      (await this.#openSocket(host, port, options.sourceIp ?? this.#options.localAddress));
    let matched: { identity: SpiffeId; certificate: X509Certificate } | undefined;
    const tls = tlsConnect({
      socket: raw,
      secureContext: context,
      ALPNProtocols: ['h2'],
      // No SNI (ztunnel: IPs are not valid SNI names and the server ignores it).
      servername: '',
      rejectUnauthorized: true,
      checkServerIdentity: (_host: string, peerCert: PeerCertificate) => {
        const x509 = new X509Certificate(peerCert.raw);
        const identity = spiffeIds(x509).find((id) => expected.has(id.toString()));
        if (identity) {
          matched = { identity, certificate: x509 };
          return undefined;
        }
        return new HboneError(
          'ERR_HBONE_PEER_IDENTITY',
          `server ${formatAuthority(host, port)} presented ${x509.subjectAltName ?? 'no SAN'}, expected one of ${[...expected].join(', ')}`,
        );
      },
    });
    const setupSignal = AbortSignal.any([
      this.#lifetime.signal,
      AbortSignal.timeout(this.#options.dialTimeoutMs ?? 10_000),
    ]);
    const t = this.#tuning;
    try {
      await untilEvent(tls, 'secureConnect', setupSignal, {
        error: (err) => toHboneError(err, `TLS to ${formatAuthority(host, port)}`),
        abort: () =>
          this.#lifetime.signal.aborted
            ? this.#lifetime.signal.reason
            : new HboneError(
                'ERR_HBONE_TLS',
                `TLS handshake with ${formatAuthority(host, port)} timed out`,
              ),
      });
      if (tls.alpnProtocol !== 'h2') {
        throw new HboneError(
          'ERR_HBONE_PROTOCOL',
          `server did not negotiate ALPN h2 (${tls.alpnProtocol})`,
        );
      }
      if (!matched)
        throw new HboneError('ERR_HBONE_PEER_IDENTITY', 'server identity was not verified');
    } catch (err) {
      tls.destroy();
      raw.destroy();
      throw err;
    }
    const peer = matched;
    const session = h2connect(`https://${formatAuthority(host, port)}`, {
      createConnection: () => tls,
      settings: localSettings(t, { enablePush: false }),
      maxSessionMemory: t.maxSessionMemory,
      peerMaxConcurrentStreams: this.#maxStreams,
    });
    session.on('error', () => {});
    const nextHop = formatAuthority(host, port);
    const key = through ? 'double-hbone' : this.#key(options, expected);
    try {
      // The server's SETTINGS tell us its stream limit before we open any stream.
      await untilEvent(session, 'remoteSettings', setupSignal, {
        error: (err) => toHboneError(err, `HTTP/2 to ${nextHop}`),
        close: () =>
          new HboneError(
            'ERR_HBONE_CONNECTION_CLOSED',
            `${nextHop} closed the connection during setup`,
          ),
        abort: () =>
          this.#lifetime.signal.aborted
            ? this.#lifetime.signal.reason
            : new HboneError('ERR_HBONE_PROTOCOL', `no HTTP/2 SETTINGS from ${nextHop} in time`),
      });
      session.setLocalWindowSize(t.connectionWindowSize);
    } catch (err) {
      session.destroy();
      throw err;
    }
    let closeError: HboneError | undefined;
    session.on('error', (err) => {
      closeError ??= toHboneError(err, `HTTP/2 to ${nextHop}`);
    });
    startKeepalive(session, t.pingIntervalMs, t.pingTimeoutMs, (err) => {
      closeError = err;
      session.destroy(err);
    });
    if (channels.connectionOpen.hasSubscribers) {
      channels.connectionOpen.publish({ key, nextHop, peer: peer.identity });
    }
    this.emit('connection-open', { key, nextHop, peer: peer.identity });
    session.once('close', () => {
      const info = closeError ? { key, nextHop, error: closeError } : { key, nextHop };
      if (channels.connectionClose.hasSubscribers) channels.connectionClose.publish(info);
      this.emit('connection-close', info);
    });
    return { session, peer };
  }

  async #connectThrough(
    options: ConnectOptions,
    authority: string,
    expected: Set<string>,
  ): Promise<ClientTunnel> {
    const outer = options.through!;
    const dialing = this.#dial(options, expected, outer);
    let dialed: Awaited<typeof dialing>;
    try {
      dialed = await raceSignal(dialing, options.signal);
    } catch (err) {
      // The caller gave up: whatever the dial still produces is not wanted.
      dialing.then(
        ({ session }) => session.destroy(),
        () => {},
      );
      throw err;
    }
    const { session, peer } = dialed;
    this.#unpooled.add(session);
    session.once('close', () => {
      this.#unpooled.delete(session);
      if (!outer.destroyed) outer.end();
    });
    try {
      const tunnel = await this.#request(session, peer, options, authority);
      // One stream per inner connection: it lives and dies with the tunnel.
      tunnel.stream.once('close', () => session.close());
      return tunnel;
    } catch (err) {
      session.destroy();
      throw err;
    }
  }

  #request(
    session: ClientHttp2Session,
    peer: Connection['peer'],
    options: ConnectOptions,
    authority: string,
    conn?: Connection,
  ): Promise<ClientTunnel> {
    if (options.signal?.aborted) {
      if (conn) this.#release(conn);
      return Promise.reject(options.signal.reason);
    }
    const traceparent = options.traceparent ?? newTraceparent();
    const headers: OutgoingHttpHeaders = {
      ...options.headers,
      ':method': 'CONNECT',
      ':authority': authority,
      traceparent,
    };
    if (options.baggage) headers.baggage = options.baggage;
    if (options.forwarded) {
      headers.forwarded =
        typeof options.forwarded === 'string'
          ? options.forwarded
          : formatForwarded(options.forwarded.for, options.forwarded.host);
    }
    if (options.forwardedNetwork) headers['x-forwarded-network'] = options.forwardedNetwork;

    let stream: ClientHttp2Stream;
    try {
      stream = session.request(headers, { endStream: false });
    } catch (err) {
      if (conn) this.#release(conn);
      return Promise.reject(toHboneError(err, `CONNECT ${authority}`));
    }
    if (conn) stream.once('close', () => this.#release(conn));
    // Errors after setup belong to whoever uses the tunnel; never crash the process for them.
    stream.on('error', () => {});
    raiseHighWaterMark(stream);
    return new Promise<ClientTunnel>((resolve, reject) => {
      const signal = options.signal;
      const cleanup = () => {
        signal?.removeEventListener('abort', onAbort);
        stream.off('response', onResponse);
        stream.off('error', onError);
        stream.off('close', onClose);
      };
      const onResponse = (h: IncomingHttpHeaders) => {
        cleanup();
        const status = Number(h[':status']);
        if (status !== 200) {
          stream.close(h2.NGHTTP2_CANCEL);
          stream.on('error', () => {});
          reject(
            new HboneError('ERR_HBONE_HTTP_STATUS', `CONNECT ${authority} answered ${status}`, {
              status,
            }),
          );
          return;
        }
        resolve(new ClientTunnel(stream, authority, traceparent, h, peer));
      };
      const onError = (err: Error) => {
        cleanup();
        reject(toHboneError(err, `CONNECT ${authority}`));
      };
      const onClose = () => {
        cleanup();
        const code = stream.rstCode;
        if (code === h2.NGHTTP2_REFUSED_STREAM || code === h2.NGHTTP2_ENHANCE_YOUR_CALM) {
          reject(
            new HboneError('ERR_HBONE_REFUSED_STREAM', `CONNECT ${authority} refused`, {
              rstCode: code,
            }),
          );
          return;
        }
        reject(
          new HboneError(
            'ERR_HBONE_CONNECTION_CLOSED',
            `CONNECT ${authority} closed before a response (code ${code})`,
            code === undefined ? {} : { rstCode: code },
          ),
        );
      };
      const onAbort = () => {
        cleanup();
        stream.on('error', () => {});
        stream.close(h2.NGHTTP2_CANCEL);
        reject(signal!.reason);
      };
      stream.once('response', onResponse);
      stream.once('error', onError);
      stream.once('close', onClose);
      signal?.addEventListener('abort', onAbort, { once: true });
    });
  }

  #release(conn: Connection): void {
    conn.active--;
    this.#armIdle(conn);
  }
}

export type { SpliceResult };
