import diagnostics from 'node:diagnostics_channel';
import { EventEmitter } from 'node:events';
import { readFile } from 'node:fs/promises';
import { checkServerIdentity as tlsCheckServerIdentity } from 'node:tls';
import * as grpc from '@grpc/grpc-js';
import { addressType } from './address.js';
import { authorizationType } from './authorization.js';
import { XdsError } from './errors.js';
import { envoy } from './gen/proto.js';
import { buildNode, type NodeInfo, type NodeOptions, toProtoStruct } from './node.js';
import type { XdsResourceType } from './resource-type.js';

const pb = envoy.service.discovery.v3;
type DeltaRequest = envoy.service.discovery.v3.DeltaDiscoveryRequest.$Properties;
type DeltaResponse = envoy.service.discovery.v3.DeltaDiscoveryResponse;

export const DELTA_ADS_PATH =
  '/envoy.service.discovery.v3.AggregatedDiscoveryService/DeltaAggregatedResources';

/** Why a stream ended, with ztunnel's metric label values. */
export type TerminationReason = 'ConnectionError' | 'Error' | 'Reconnect' | 'Complete';

export interface DeltaAdsClientOptions {
  /** `https://host:port` (TLS), `http://host:port` (plaintext, tests), or `host:port` (TLS). */
  address: string;
  /**
   * Root certificate(s) to verify the server: a file path (re-read on every connect), the
   * literal `SYSTEM` (Node's bundled roots), or inline PEM. Required for TLS.
   */
  rootCa?: string;
  /** Another server name the certificate may carry instead of the address's host. */
  altHostname?: string;
  /** Bearer token: a file re-read on every connect, or a fixed value. */
  token?: { file: string } | { value: string };
  /** Sent as the `clusterid` header. Default `Kubernetes`. */
  clusterId?: string;
  /** Extra gRPC metadata on the stream (ztunnel's `XDS_HEADER_*`). */
  headers?: Record<string, string>;
  /** Who this proxy is; id `ztunnel~<ip>~<pod>.<ns>~<ns>.svc.cluster.local`. */
  node: NodeOptions;
  /** Resource types to subscribe to. Default: Address, then Authorization. */
  types?: readonly XdsResourceType<unknown>[];
  /** Type URLs fetched on demand instead of by wildcard (ztunnel: Address with `XDS_ON_DEMAND`). */
  onDemand?: readonly string[];
  /** Reconnect backoff. Default 10 ms doubling to 15 s. */
  backoff?: { initialMs?: number; maxMs?: number };
  /** Give up a connection attempt after this long. Default 5000. */
  connectTimeoutMs?: number;
  /** Largest response accepted. Default 200 MiB. */
  maxMessageBytes?: number;
  /** HTTP/2 keepalive ping interval and timeout. Default 30 s / 10 s. */
  keepalive?: { timeMs?: number; timeoutMs?: number };
  /** Extra grpc-js channel options (applied last). */
  channelOptions?: grpc.ChannelOptions;
}

/** A resource the client holds. */
export interface HeldResource<T> {
  name: string;
  version: string;
  aliases: readonly string[];
  value: T;
}

/** What one response changed for one type. Batches are delivered in order, never merged. */
export interface ResourceChange<T = unknown> {
  typeUrl: string;
  added: HeldResource<T>[];
  updated: (HeldResource<T> & { previous: T })[];
  removed: { name: string; previous: T }[];
}

export interface RejectedResource {
  name: string;
  errors: string[];
}

export interface AckEvent {
  typeUrl: string;
  nonce: string;
}

export interface NackEvent extends AckEvent {
  /** The `error_detail.message` sent: every rejection, `"; "`-joined. */
  message: string;
  rejected: RejectedResource[];
}

export interface DisconnectEvent {
  reason: TerminationReason;
  error?: XdsError;
  /** Delay before the next attempt. */
  retryInMs: number;
}

export interface DeltaAdsClientEvents {
  change: [ResourceChange];
  ack: [AckEvent];
  nack: [NackEvent];
  connect: [{ attempt: number }];
  disconnect: [DisconnectEvent];
  ready: [];
}

/** Counters as plain data; `@mesh/metrics` maps them to ztunnel's Prometheus series. */
export interface XdsCounters {
  /** Responses received, by type URL (`istio_xds_message_total`). */
  messages: Record<string, number>;
  /** Response bytes received, by type URL (`istio_xds_message_bytes_total`). */
  messageBytes: Record<string, number>;
  /** Streams ended, by reason (`istio_xds_connection_terminations_total`). */
  connectionTerminations: Record<TerminationReason, number>;
  acks: Record<string, number>;
  nacks: Record<string, number>;
}

const channels = {
  connect: diagnostics.channel('mesh:xds-client:connect'),
  disconnect: diagnostics.channel('mesh:xds-client:disconnect'),
  ack: diagnostics.channel('mesh:xds-client:ack'),
  nack: diagnostics.channel('mesh:xds-client:nack'),
};

interface TypeState {
  type: XdsResourceType<unknown>;
  onDemand: boolean;
  held: Map<string, HeldResource<unknown>>;
  /** alias → resource name, for on-demand lookups by `network/IP`. */
  aliases: Map<string, string>;
  /** Names whose last push was rejected: left out of `initial_resource_versions`. */
  rejected: Set<string>;
  /** On-demand names asked for; re-subscribed on every new stream. */
  subscribed: Set<string>;
  waiters: Map<string, Set<(held: HeldResource<unknown> | undefined) => void>>;
  acked: boolean;
}

interface Stream {
  call: grpc.ClientDuplexStream<DeltaRequest, { message: DeltaResponse; size: number }>;
  nonces: Set<string>;
}

const toBuffer = (u: Uint8Array) => Buffer.from(u.buffer, u.byteOffset, u.byteLength);
const serializeRequest = (req: DeltaRequest) =>
  toBuffer(pb.DeltaDiscoveryRequest.encode(req).finish());
const deserializeResponse = (buf: Buffer) => ({
  message: pb.DeltaDiscoveryResponse.decode(buf),
  size: buf.length,
});

const NONCE_MEMORY = 1024;

const RECONNECT_CODES = new Set([
  grpc.status.UNKNOWN,
  grpc.status.CANCELLED,
  grpc.status.DEADLINE_EXCEEDED,
]);

/**
 * A delta Aggregated Discovery Service client speaking the protocol as ztunnel does: wildcard
 * (or on-demand) subscriptions per registered type, ACK/NACK per response with partial
 * application, `initial_resource_versions` on reconnect, and backoff from 10 ms to 15 s.
 *
 * Call {@link start} after attaching listeners. State survives reconnects.
 */
export class DeltaAdsClient extends EventEmitter<DeltaAdsClientEvents> {
  readonly node: NodeInfo;
  readonly #opts: DeltaAdsClientOptions;
  readonly #types = new Map<string, TypeState>();
  readonly #target: string;
  readonly #tls: boolean;
  readonly #closing = new AbortController();
  readonly #watchers = new Set<ChangeQueue>();
  readonly #readyWaiters = new Set<() => void>();
  #ready = false;
  #stream: Stream | undefined;
  #grpcClient: grpc.Client | undefined;
  #loop: Promise<void> | undefined;
  #attempt = 0;
  readonly #counters: XdsCounters = {
    messages: {},
    messageBytes: {},
    connectionTerminations: { ConnectionError: 0, Error: 0, Reconnect: 0, Complete: 0 },
    acks: {},
    nacks: {},
  };

  constructor(options: DeltaAdsClientOptions) {
    super();
    this.#opts = options;
    const m = /^(https?):\/\/(.+?)\/?$/.exec(options.address);
    this.#tls = m ? m[1] === 'https' : true;
    this.#target = m ? m[2]! : options.address;
    if (!this.#target) throw new XdsError('ERR_XDS_INVALID_OPTIONS', 'address is empty');
    if (this.#tls && !options.rootCa) {
      throw new XdsError('ERR_XDS_INVALID_OPTIONS', 'rootCa is required for a TLS address');
    }
    if (!options.node?.podName || !options.node.podNamespace) {
      throw new XdsError(
        'ERR_XDS_INVALID_OPTIONS',
        'node.podName and node.podNamespace are required',
      );
    }
    this.node = buildNode(options.node);
    const types = options.types ?? [addressType, authorizationType];
    const onDemand = new Set(options.onDemand ?? []);
    for (const type of types) {
      if (this.#types.has(type.typeUrl)) {
        throw new XdsError('ERR_XDS_INVALID_OPTIONS', `type ${type.typeUrl} registered twice`);
      }
      this.#types.set(type.typeUrl, {
        type,
        onDemand: onDemand.delete(type.typeUrl),
        held: new Map(),
        aliases: new Map(),
        rejected: new Set(),
        subscribed: new Set(),
        waiters: new Map(),
        acked: false,
      });
    }
    this.#ready = [...this.#types.values()].every((t) => t.onDemand);
    if (onDemand.size > 0) {
      throw new XdsError(
        'ERR_XDS_UNKNOWN_TYPE',
        `onDemand names unregistered types: ${[...onDemand].join(', ')}`,
      );
    }
  }

  /** Begin connecting (idempotent). Returns `this`. */
  start(): this {
    if (this.#closing.signal.aborted) throw new XdsError('ERR_XDS_CLOSED', 'client is closed');
    this.#loop ??= this.#run();
    return this;
  }

  /** True once every wildcard type has had its first response ACKed. */
  get isReady(): boolean {
    return this.#ready;
  }

  /** Resolves once {@link isReady}; rejects with `signal.reason` or `ERR_XDS_CLOSED`. */
  ready(options: { signal?: AbortSignal } = {}): Promise<void> {
    if (this.#ready) return Promise.resolve();
    return this.#waitFor(this.#readyWaiters, options.signal);
  }

  /** A copy of what is held for a type, by resource name. */
  snapshot<T>(type: XdsResourceType<T> | string): Map<string, HeldResource<T>> {
    return new Map(this.#state(type).held) as Map<string, HeldResource<T>>;
  }

  /** One held resource by name or on-demand alias. */
  get<T>(type: XdsResourceType<T> | string, name: string): HeldResource<T> | undefined {
    const state = this.#state(type);
    return (state.held.get(name) ?? state.held.get(state.aliases.get(name) ?? '')) as
      | HeldResource<T>
      | undefined;
  }

  /** Counters so far, as a fresh plain object. */
  counters(): XdsCounters {
    return structuredClone(this.#counters);
  }

  /**
   * Fetch one resource of an on-demand type by name or alias (e.g. `/10.0.0.5`): subscribe to it
   * and wait until the control plane pushes it. Resolves `undefined` when the control plane
   * answers that it does not exist. The subscription stays, so later changes arrive too.
   */
  async lookup<T>(
    type: XdsResourceType<T> | string,
    name: string,
    options: { signal?: AbortSignal } = {},
  ): Promise<HeldResource<T> | undefined> {
    const state = this.#state(type);
    if (!state.onDemand) {
      throw new XdsError(
        'ERR_XDS_NOT_ON_DEMAND',
        `${state.type.typeUrl} is subscribed by wildcard`,
      );
    }
    options.signal?.throwIfAborted();
    const held = this.get<T>(type, name);
    if (held) return held;
    let waiters = state.waiters.get(name);
    if (!waiters) {
      waiters = new Set();
      state.waiters.set(name, waiters);
    }
    const result = this.#waitFor(waiters, options.signal) as Promise<HeldResource<T> | undefined>;
    if (!state.subscribed.has(name)) {
      state.subscribed.add(name);
      this.#stream?.call.write({ typeUrl: state.type.typeUrl, resourceNamesSubscribe: [name] });
    }
    return result;
  }

  /**
   * Every change as batches, starting with one batch per type holding what is already there
   * (as `added`), so nothing is missed between reading a snapshot and listening. Ends on
   * `close()` or when `signal` aborts.
   */
  watch(
    options: { signal?: AbortSignal; types?: readonly string[] } = {},
  ): AsyncIterableIterator<ResourceChange, undefined> {
    const filter = options.types ? new Set(options.types) : undefined;
    const signal = options.signal;
    const onAbort = () => queue.end();
    const queue = new ChangeQueue(filter, () => {
      this.#watchers.delete(queue);
      signal?.removeEventListener('abort', onAbort);
    });
    for (const state of this.#types.values()) {
      if (state.held.size > 0) {
        queue.push({
          typeUrl: state.type.typeUrl,
          added: [...state.held.values()],
          updated: [],
          removed: [],
        });
      }
    }
    if (this.#closing.signal.aborted) queue.end();
    else this.#watchers.add(queue);
    if (signal?.aborted) queue.end();
    else signal?.addEventListener('abort', onAbort, { once: true });
    return queue;
  }

  /** Stop: cancel the stream, end watchers, reject waiting calls. Idempotent. */
  async close(): Promise<void> {
    if (!this.#closing.signal.aborted) {
      this.#closing.abort(new XdsError('ERR_XDS_CLOSED', 'client is closed'));
      this.#stream?.call.cancel();
      this.#grpcClient?.close();
      for (const q of this.#watchers) q.end();
    }
    await this.#loop;
  }

  #state(type: XdsResourceType<unknown> | string): TypeState {
    const url = typeof type === 'string' ? type : type.typeUrl;
    const state = this.#types.get(url);
    if (!state) throw new XdsError('ERR_XDS_UNKNOWN_TYPE', `type ${url} is not registered`);
    return state;
  }

  #waitFor<T>(set: Set<(v: T) => void>, signal: AbortSignal | undefined): Promise<T> {
    const closing = this.#closing.signal;
    if (closing.aborted) return Promise.reject(closing.reason);
    if (signal?.aborted) return Promise.reject(signal.reason);
    return new Promise<T>((resolve, reject) => {
      const cleanup = () => {
        set.delete(done);
        closing.removeEventListener('abort', onAbort);
        signal?.removeEventListener('abort', onAbort);
      };
      const done = (v: T) => {
        cleanup();
        resolve(v);
      };
      const onAbort = () => {
        cleanup();
        reject(signal?.aborted ? signal.reason : closing.reason);
      };
      set.add(done);
      closing.addEventListener('abort', onAbort, { once: true });
      signal?.addEventListener('abort', onAbort, { once: true });
    });
  }

  async #run(): Promise<void> {
    const initial = this.#opts.backoff?.initialMs ?? 10;
    const max = this.#opts.backoff?.maxMs ?? 15_000;
    let delay = initial;
    while (!this.#closing.signal.aborted) {
      const { reason, error, responses } = await this.#runStream();
      if (this.#closing.signal.aborted) break;
      this.#counters.connectionTerminations[reason]++;
      // A clean end or a transient transport reset reconnects at once; a stream that worked
      // also starts the backoff over, so one failure after hours does not wait 15 s.
      if (reason === 'Complete' || reason === 'Reconnect' || responses > 0) delay = initial;
      const retryInMs = reason === 'Complete' || reason === 'Reconnect' ? 0 : delay;
      const event: DisconnectEvent = { reason, retryInMs, ...(error ? { error } : {}) };
      if (channels.disconnect.hasSubscribers) channels.disconnect.publish(event);
      this.emit('disconnect', event);
      if (retryInMs > 0) {
        delay = Math.min(delay * 2, max);
        await sleep(retryInMs, this.#closing.signal);
      }
    }
  }

  async #credentials(): Promise<{ creds: grpc.ChannelCredentials; metadata: grpc.Metadata }> {
    const o = this.#opts;
    const metadata = new grpc.Metadata();
    try {
      if (o.token) {
        const token =
          'file' in o.token ? (await readFile(o.token.file, 'utf8')).trim() : o.token.value;
        metadata.set('authorization', `Bearer ${token}`);
      }
    } catch (err) {
      throw new XdsError('ERR_XDS_CREDENTIALS', `cannot read token: ${(err as Error).message}`, {
        cause: err,
      });
    }
    metadata.set('clusterid', o.clusterId ?? 'Kubernetes');
    for (const [k, v] of Object.entries(o.headers ?? {})) metadata.set(k, v);
    if (!this.#tls) return { creds: grpc.credentials.createInsecure(), metadata };
    let roots: Buffer | null = null;
    const ca = o.rootCa!;
    try {
      if (ca === 'SYSTEM') roots = null;
      else if (ca.includes('-----BEGIN')) roots = Buffer.from(ca);
      else roots = await readFile(ca);
    } catch (err) {
      throw new XdsError('ERR_XDS_CREDENTIALS', `cannot read root CA: ${(err as Error).message}`, {
        cause: err,
      });
    }
    const alt = o.altHostname;
    const creds = grpc.credentials.createSsl(roots, null, null, {
      checkServerIdentity: (host, cert) => {
        const err = tlsCheckServerIdentity(host, cert);
        return err && alt ? tlsCheckServerIdentity(alt, cert) : err;
      },
    });
    return { creds, metadata };
  }

  async #runStream(): Promise<{ reason: TerminationReason; error?: XdsError; responses: number }> {
    let setup: { creds: grpc.ChannelCredentials; metadata: grpc.Metadata };
    try {
      setup = await this.#credentials();
    } catch (err) {
      return { reason: 'ConnectionError', error: err as XdsError, responses: 0 };
    }
    if (this.#closing.signal.aborted) return { reason: 'Complete', responses: 0 };
    const o = this.#opts;
    const max = o.maxMessageBytes ?? 200 * 1024 * 1024;
    const client = new grpc.Client(this.#target, setup.creds, {
      'grpc.max_receive_message_length': max,
      'grpc.max_send_message_length': max,
      'grpc.keepalive_time_ms': o.keepalive?.timeMs ?? 30_000,
      'grpc.keepalive_timeout_ms': o.keepalive?.timeoutMs ?? 10_000,
      'grpc.keepalive_permit_without_calls': 1,
      // Reconnecting is this client's job (with ztunnel's backoff), not the channel's.
      'grpc.initial_reconnect_backoff_ms': 1000,
      'grpc.enable_retries': 0,
      ...o.channelOptions,
    });
    this.#grpcClient = client;
    const call = client.makeBidiStreamRequest(
      DELTA_ADS_PATH,
      serializeRequest,
      deserializeResponse,
      setup.metadata,
    );
    const stream: Stream = { call, nonces: new Set() };
    this.#stream = stream;
    const attempt = ++this.#attempt;
    let established = false;
    let timedOut = false;
    let responses = 0;
    const channel = client.getChannel();
    const connectTimer = setTimeout(() => {
      if (channel.getConnectivityState(false) !== grpc.connectivityState.READY && !established) {
        timedOut = true;
        call.cancel();
      }
    }, o.connectTimeoutMs ?? 5000);
    const markEstablished = () => {
      if (established) return;
      established = true;
      clearTimeout(connectTimer);
      if (channels.connect.hasSubscribers)
        channels.connect.publish({ attempt, address: o.address });
      this.emit('connect', { attempt });
    };
    const result = new Promise<{ reason: TerminationReason; error?: XdsError; responses: number }>(
      (resolve) => {
        call.on('metadata', markEstablished);
        call.on('data', ({ message, size }: { message: DeltaResponse; size: number }) => {
          markEstablished();
          responses++;
          this.#handleResponse(stream, message, size);
        });
        // 'error' is also emitted for non-OK statuses; 'status' carries everything we need.
        call.on('error', () => {});
        call.on('status', (status: grpc.StatusObject) => {
          clearTimeout(connectTimer);
          const timeout = `no connection within ${o.connectTimeoutMs ?? 5000} ms`;
          const final = timedOut
            ? { ...status, code: grpc.status.UNAVAILABLE, details: timeout }
            : status;
          resolve({ ...classify(final, established, o.address), responses });
        });
      },
    );
    for (const state of this.#types.values()) call.write(this.#initialRequest(state));
    const outcome = await result;
    if (this.#stream === stream) this.#stream = undefined;
    client.close();
    return outcome;
  }

  #initialRequest(state: TypeState): DeltaRequest {
    const initialResourceVersions: Record<string, string> = {};
    for (const [name, held] of state.held) {
      if (!state.rejected.has(name)) initialResourceVersions[name] = held.version;
    }
    const req: DeltaRequest = {
      node: { id: this.node.id, metadata: toProtoStruct(this.node.metadata) },
      typeUrl: state.type.typeUrl,
      initialResourceVersions,
    };
    if (state.onDemand) {
      // "*" subscribed and unsubscribed in one message: not wildcard, nothing yet; then the
      // names asked for so far.
      req.resourceNamesSubscribe = ['*', ...state.subscribed];
      req.resourceNamesUnsubscribe = ['*'];
    }
    return req;
  }

  #handleResponse(stream: Stream, res: DeltaResponse, size: number): void {
    const typeUrl = res.typeUrl ?? '';
    const nonce = res.nonce ?? '';
    const c = this.#counters;
    c.messages[typeUrl] = (c.messages[typeUrl] ?? 0) + 1;
    c.messageBytes[typeUrl] = (c.messageBytes[typeUrl] ?? 0) + size;
    const state = this.#types.get(typeUrl);
    if (!state) {
      this.#nack(stream, typeUrl, nonce, [
        { name: '', errors: [`type URL ${JSON.stringify(typeUrl)} was not subscribed`] },
      ]);
      return;
    }
    if (nonce && stream.nonces.has(nonce)) {
      // A replayed response may carry versions older than what was applied since; applying
      // it could roll state back, so it is refused whole.
      this.#nack(stream, typeUrl, nonce, [
        {
          name: '',
          errors: [
            `nonce ${JSON.stringify(nonce)} was already answered on this stream; response ignored`,
          ],
        },
      ]);
      return;
    }
    stream.nonces.add(nonce);
    // Replays worth catching are recent; keep the memory of a long-lived stream bounded.
    if (stream.nonces.size > NONCE_MEMORY)
      stream.nonces.delete(stream.nonces.values().next().value!);

    const counts = new Map<string, number>();
    for (const r of res.resources) counts.set(r.name ?? '', (counts.get(r.name ?? '') ?? 0) + 1);
    const rejected: RejectedResource[] = [];
    const good: HeldResource<unknown>[] = [];
    const seenDup = new Set<string>();
    res.resources.forEach((r, i) => {
      const name = r.name ?? '';
      if (!name) {
        rejected.push({ name: `resources[${i}]`, errors: ['resource has no name'] });
        return;
      }
      if (counts.get(name)! > 1) {
        if (!seenDup.has(name)) {
          seenDup.add(name);
          rejected.push({ name, errors: [`appears ${counts.get(name)} times in one response`] });
        }
        return;
      }
      const any = r.resource;
      if (!any) {
        rejected.push({ name, errors: ['resource has no body'] });
        return;
      }
      if (any.type_url !== typeUrl) {
        rejected.push({
          name,
          errors: [
            `body has type URL ${JSON.stringify(any.type_url ?? '')}, want ${JSON.stringify(typeUrl)}`,
          ],
        });
        return;
      }
      let decoded: ReturnType<XdsResourceType<unknown>['decode']>;
      try {
        decoded = state.type.decode(any.value ?? new Uint8Array());
      } catch (err) {
        decoded = { valid: false, errors: [`decoder threw: ${(err as Error).message}`] };
      }
      if (!decoded.valid) rejected.push({ name, errors: decoded.errors });
      else
        good.push({
          name,
          version: r.version ?? '',
          aliases: r.aliases ?? [],
          value: decoded.value,
        });
    });

    const change: ResourceChange = { typeUrl, added: [], updated: [], removed: [] };
    for (const h of good) {
      const prev = state.held.get(h.name);
      if (prev) {
        for (const a of prev.aliases) state.aliases.delete(a);
        change.updated.push({ ...h, previous: prev.value });
      } else change.added.push(h);
      state.held.set(h.name, h);
      for (const a of h.aliases) state.aliases.set(a, h.name);
      state.rejected.delete(h.name);
    }
    for (const r of rejected) state.rejected.add(r.name);
    const removedNames = res.removedResources ?? [];
    for (const name of removedNames) {
      const prev = state.held.get(name);
      state.rejected.delete(name);
      if (!prev) continue;
      state.held.delete(name);
      for (const a of prev.aliases) if (state.aliases.get(a) === name) state.aliases.delete(a);
      change.removed.push({ name, previous: prev.value });
    }

    if (rejected.length > 0) this.#nack(stream, typeUrl, nonce, rejected);
    else this.#ack(stream, state, nonce);

    if (change.added.length + change.updated.length + change.removed.length > 0) {
      for (const q of this.#watchers) q.push(change);
      this.emit('change', change);
    }
    if (state.onDemand) this.#settleLookups(state, good, removedNames);
  }

  #settleLookups(state: TypeState, good: HeldResource<unknown>[], removed: string[]): void {
    const settle = (key: string, value: HeldResource<unknown> | undefined) => {
      const waiters = state.waiters.get(key);
      if (!waiters) return;
      state.waiters.delete(key);
      for (const w of [...waiters]) w(value);
    };
    for (const h of good) {
      settle(h.name, h);
      for (const a of h.aliases) settle(a, h);
    }
    // The control plane answers a subscription to an unknown name by listing it as removed.
    for (const name of removed) if (!state.held.has(name)) settle(name, undefined);
  }

  #ack(stream: Stream, state: TypeState, nonce: string): void {
    const typeUrl = state.type.typeUrl;
    stream.call.write({ typeUrl, responseNonce: nonce });
    this.#counters.acks[typeUrl] = (this.#counters.acks[typeUrl] ?? 0) + 1;
    const event: AckEvent = { typeUrl, nonce };
    if (channels.ack.hasSubscribers) channels.ack.publish(event);
    this.emit('ack', event);
    if (!state.acked) {
      state.acked = true;
      if (!this.#ready && [...this.#types.values()].every((s) => s.acked || s.onDemand)) {
        this.#ready = true;
        for (const w of [...this.#readyWaiters]) w();
        this.emit('ready');
      }
    }
  }

  #nack(stream: Stream, typeUrl: string, nonce: string, rejected: RejectedResource[]): void {
    const message = rejected
      .map((r) => (r.name ? `${r.name}: ${r.errors.join(', ')}` : r.errors.join(', ')))
      .join('; ');
    stream.call.write({ typeUrl, responseNonce: nonce, errorDetail: { message } });
    this.#counters.nacks[typeUrl] = (this.#counters.nacks[typeUrl] ?? 0) + 1;
    const event: NackEvent = { typeUrl, nonce, message, rejected };
    if (channels.nack.hasSubscribers) channels.nack.publish(event);
    this.emit('nack', event);
  }
}

function classify(
  status: grpc.StatusObject,
  established: boolean,
  address: string,
): { reason: TerminationReason; error?: XdsError } {
  if (status.code === grpc.status.OK) return { reason: 'Complete' };
  const name = grpc.status[status.code] ?? String(status.code);
  if (!established && status.code === grpc.status.UNAVAILABLE) {
    return {
      reason: 'ConnectionError',
      error: new XdsError(
        'ERR_XDS_CONNECT',
        `cannot connect to ${address}: ${status.details.replace(/\. Resolution note: *$/, '')}`,
      ),
    };
  }
  const error = new XdsError('ERR_XDS_STREAM', `stream ended with ${name}: ${status.details}`);
  const transient =
    RECONNECT_CODES.has(status.code) ||
    (status.code === grpc.status.UNAVAILABLE &&
      /transport is closing|received prior goaway/i.test(status.details));
  return { reason: transient ? 'Reconnect' : 'Error', error };
}

function sleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    const timer = setTimeout(done, ms);
    function done() {
      clearTimeout(timer);
      signal.removeEventListener('abort', done);
      resolve();
    }
    signal.addEventListener('abort', done, { once: true });
  });
}

/** An unbounded FIFO of change batches consumed as an async iterator. */
class ChangeQueue implements AsyncIterableIterator<ResourceChange, undefined> {
  readonly #items: ResourceChange[] = [];
  #pending: ((r: IteratorResult<ResourceChange, undefined>) => void) | undefined;
  #ended = false;

  constructor(
    readonly filter: Set<string> | undefined,
    readonly onEnd: () => void,
  ) {}

  push(change: ResourceChange): void {
    if (this.#ended || (this.filter && !this.filter.has(change.typeUrl))) return;
    const pending = this.#pending;
    if (pending) {
      this.#pending = undefined;
      pending({ value: change, done: false });
    } else this.#items.push(change);
  }

  end(): void {
    if (this.#ended) return;
    this.#ended = true;
    this.onEnd();
    const pending = this.#pending;
    this.#pending = undefined;
    pending?.({ value: undefined, done: true });
  }

  next(): Promise<IteratorResult<ResourceChange, undefined>> {
    const item = this.#items.shift();
    if (item) return Promise.resolve({ value: item, done: false });
    if (this.#ended) return Promise.resolve({ value: undefined, done: true });
    return new Promise((resolve) => {
      this.#pending = resolve;
    });
  }

  return(): Promise<IteratorResult<ResourceChange, undefined>> {
    this.#items.length = 0;
    this.end();
    return Promise.resolve({ value: undefined, done: true });
  }

  [Symbol.asyncIterator](): this {
    return this;
  }
}
