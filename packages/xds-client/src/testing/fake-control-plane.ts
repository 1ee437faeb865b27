import * as grpc from '@grpc/grpc-js';
import { addressType } from '../address.js';
import { authorizationType } from '../authorization.js';
import { DELTA_ADS_PATH } from '../client.js';
import { XdsError } from '../errors.js';
import { envoy } from '../gen/proto.js';
import { fromProtoStruct, type NodeInfo } from '../node.js';
import type { XdsResourceType } from '../resource-type.js';

const pb = envoy.service.discovery.v3;
type DeltaRequest = envoy.service.discovery.v3.DeltaDiscoveryRequest;
type DeltaResponse = envoy.service.discovery.v3.DeltaDiscoveryResponse.$Properties;

export interface FakeControlPlaneOptions {
  /** Default `127.0.0.1`. */
  host?: string;
  /** Default 0 (any free port). */
  port?: number;
  /** Serve TLS with this key pair (PEM); plaintext otherwise. */
  tls?: { key: string | Buffer; cert: string | Buffer };
  /** Types `set()` accepts by type object. Default Address and Authorization. */
  types?: readonly XdsResourceType<unknown>[];
}

/** One request the fake received, decoded to plain data. */
export interface RecordedRequest {
  /** Stream id (1, 2, ... in order of connection). */
  stream: number;
  /** `initial`: first for its type on the stream; `ack`/`nack`: answers; `subscribe`: changes. */
  kind: 'initial' | 'ack' | 'nack' | 'subscribe';
  typeUrl: string;
  node?: NodeInfo;
  subscribe: string[];
  unsubscribe: string[];
  initialResourceVersions: Record<string, string>;
  responseNonce: string;
  errorDetail?: { code: number; message: string };
}

/** One delta ADS stream the fake accepted. */
export interface StreamInfo {
  id: number;
  /** Request metadata (headers) as strings. */
  metadata: Record<string, string>;
  node?: NodeInfo;
  open: boolean;
}

/** A resource pushed as is, for feeding clients bad input. */
export interface RawResource {
  name: string;
  version?: string;
  aliases?: string[];
  /** The Any's type URL; default the response's. */
  typeUrl?: string;
  /** The Any's bytes; omit to send a resource without a body. */
  body?: Uint8Array;
}

interface Stored {
  version: string;
  aliases: string[];
  body: Uint8Array;
}

interface Subscription {
  wildcard: boolean;
  names: Set<string>;
}

interface LiveStream {
  info: StreamInfo;
  call: grpc.ServerDuplexStream<DeltaRequest, DeltaResponse | Buffer>;
  subs: Map<string, Subscription>;
}

const toBuffer = (u: Uint8Array) => Buffer.from(u.buffer, u.byteOffset, u.byteLength);

/**
 * A real grpc-js delta ADS server for tests: it keeps resources per type, serves wildcard and
 * named subscriptions with `initial_resource_versions` honoured, pushes changes to every open
 * stream, records every request (ACK, NACK, subscriptions, node, headers), and can drop
 * streams, send garbage, or restart on the same port.
 */
export class FakeControlPlane {
  readonly requests: RecordedRequest[] = [];
  readonly streams: StreamInfo[] = [];
  readonly #opts: FakeControlPlaneOptions;
  readonly #types = new Map<string, XdsResourceType<unknown>>();
  readonly #store = new Map<string, Map<string, Stored>>();
  readonly #live = new Set<LiveStream>();
  readonly #listeners = new Set<() => void>();
  #server: grpc.Server | undefined;
  #port = 0;
  #nonce = 0;
  #version = 0;

  private constructor(opts: FakeControlPlaneOptions) {
    this.#opts = opts;
    for (const t of opts.types ?? [addressType, authorizationType]) this.#types.set(t.typeUrl, t);
  }

  /** Listen and return the running fake. */
  static async start(options: FakeControlPlaneOptions = {}): Promise<FakeControlPlane> {
    const cp = new FakeControlPlane(options);
    await cp.#listen(options.port ?? 0);
    return cp;
  }

  get port(): number {
    return this.#port;
  }

  /** What to give `DeltaAdsClientOptions.address`. */
  get address(): string {
    const host = this.#opts.host ?? '127.0.0.1';
    return `${this.#opts.tls ? 'https' : 'http'}://${host.includes(':') ? `[${host}]` : host}:${this.#port}`;
  }

  /** Open streams. */
  get openStreams(): StreamInfo[] {
    return this.streams.filter((s) => s.open);
  }

  /** Store values (named as the type names them) and push them to subscribed streams. */
  set<T>(
    type: XdsResourceType<T>,
    values: T | readonly T[],
    options: { version?: string } = {},
  ): void {
    this.#typeOf(type.typeUrl);
    const list = (Array.isArray(values) ? values : [values]) as T[];
    const version = options.version ?? String(++this.#version);
    const store = this.#storeOf(type.typeUrl);
    const names: string[] = [];
    for (const v of list) {
      const name = type.name(v);
      store.set(name, { version, aliases: type.aliases?.(v) ?? [], body: type.encode(v) });
      names.push(name);
    }
    for (const s of this.#live) this.#pushStored(s, type.typeUrl, names, []);
  }

  /** Forget resources and tell subscribed streams they are removed. */
  remove(type: XdsResourceType<unknown> | string, names: readonly string[]): void {
    const url = typeof type === 'string' ? type : type.typeUrl;
    const store = this.#storeOf(url);
    for (const n of names) store.delete(n);
    for (const s of this.#live) this.#pushStored(s, url, [], [...names]);
  }

  /** Forget everything of every type without telling anyone (e.g. before a restart). */
  clear(): void {
    this.#store.clear();
  }

  /** Names and versions stored for a type. */
  versions(type: XdsResourceType<unknown> | string): Record<string, string> {
    const url = typeof type === 'string' ? type : type.typeUrl;
    return Object.fromEntries([...this.#storeOf(url)].map(([n, s]) => [n, s.version]));
  }

  /**
   * Send one response as given to every open stream (or one), bypassing the store: for bad
   * input. Returns the nonce used.
   */
  pushRaw(
    typeUrl: string,
    resources: readonly RawResource[],
    options: { removed?: string[]; nonce?: string; stream?: number } = {},
  ): string {
    const nonce = options.nonce ?? this.#nextNonce();
    const response: DeltaResponse = {
      typeUrl,
      nonce,
      removedResources: options.removed ?? [],
      resources: resources.map((r) => ({
        name: r.name,
        version: r.version ?? '',
        aliases: r.aliases ?? [],
        resource: r.body ? { type_url: r.typeUrl ?? typeUrl, value: r.body } : null,
      })),
    };
    const targets = this.#targets(options.stream);
    for (const s of targets) s.call.write(response);
    return nonce;
  }

  /**
   * Write these bytes as one gRPC message, as is: a response encoded by another protobuf
   * implementation, or garbage (the client's gRPC layer then fails the stream).
   */
  pushBytes(bytes: Uint8Array, options: { stream?: number } = {}): void {
    for (const s of this.#targets(options.stream)) s.call.write(toBuffer(bytes));
  }

  /** End every open stream: with OK (`code` 0) as a clean end, or with an error status. */
  dropStreams(status: { code?: grpc.status; details?: string } = {}): void {
    const code = status.code ?? grpc.status.UNAVAILABLE;
    for (const s of [...this.#live])
      this.#end(s, code, status.details ?? 'dropped by the fake control plane');
  }

  /** Wait for a request matching `match`, looking at requests recorded from index `since` on. */
  waitForRequest(
    match: (r: RecordedRequest) => boolean,
    options: { since?: number; signal?: AbortSignal; timeoutMs?: number } = {},
  ): Promise<RecordedRequest> {
    let from = options.since ?? 0;
    return this.#until(() => {
      for (; from < this.requests.length; from++) {
        if (match(this.requests[from]!)) return this.requests[from]!;
      }
      return undefined;
    }, options);
  }

  /** Wait until a stream with id greater than `after` is open and has sent its first request. */
  waitForStream(
    options: { after?: number; signal?: AbortSignal; timeoutMs?: number } = {},
  ): Promise<StreamInfo> {
    const after = options.after ?? 0;
    return this.#until(
      () => this.streams.find((s) => s.id > after && s.node !== undefined),
      options,
    );
  }

  /** Stop serving (streams dropped, clients see the server gone); the store is kept. */
  async stop(): Promise<void> {
    const server = this.#server;
    this.#server = undefined;
    for (const s of this.#live) s.info.open = false;
    this.#live.clear();
    server?.forceShutdown();
  }

  /** Stop, then listen again on the same port with the same store. */
  async restart(): Promise<void> {
    await this.stop();
    await this.#listen(this.#port);
  }

  /** End streams cleanly and shut down. Idempotent. */
  async close(): Promise<void> {
    const server = this.#server;
    if (!server) return;
    for (const s of [...this.#live]) this.#end(s, grpc.status.OK, '');
    this.#server = undefined;
    await new Promise<void>((resolve) => server.tryShutdown(() => resolve()));
  }

  /** Shut down at once. Idempotent. */
  async destroy(): Promise<void> {
    await this.stop();
  }

  #typeOf(url: string): XdsResourceType<unknown> {
    const t = this.#types.get(url);
    if (!t) throw new XdsError('ERR_XDS_UNKNOWN_TYPE', `fake control plane does not serve ${url}`);
    return t;
  }

  #storeOf(url: string): Map<string, Stored> {
    let s = this.#store.get(url);
    if (!s) {
      s = new Map();
      this.#store.set(url, s);
    }
    return s;
  }

  #targets(stream: number | undefined): LiveStream[] {
    const targets = [...this.#live].filter((s) => stream === undefined || s.info.id === stream);
    if (targets.length === 0) throw new XdsError('ERR_XDS_NO_STREAM', 'no open stream to push to');
    return targets;
  }

  #nextNonce(): string {
    return `nonce-${++this.#nonce}`;
  }

  #until<T>(
    probe: () => T | undefined,
    options: { signal?: AbortSignal; timeoutMs?: number },
  ): Promise<T> {
    const found = probe();
    if (found !== undefined) return Promise.resolve(found);
    return new Promise<T>((resolve, reject) => {
      const timer = setTimeout(
        () => finish(new XdsError('ERR_XDS_CLOSED', 'fake control plane: timed out waiting')),
        options.timeoutMs ?? 10_000,
      );
      const check = () => {
        const v = probe();
        if (v !== undefined) finish(undefined, v);
      };
      const onAbort = () => finish(options.signal!.reason);
      const finish = (err: unknown, value?: T) => {
        clearTimeout(timer);
        this.#listeners.delete(check);
        options.signal?.removeEventListener('abort', onAbort);
        if (err) reject(err);
        else resolve(value as T);
      };
      this.#listeners.add(check);
      options.signal?.addEventListener('abort', onAbort, { once: true });
    });
  }

  #notify(): void {
    for (const l of [...this.#listeners]) l();
  }

  #end(s: LiveStream, code: grpc.status, details: string): void {
    if (!this.#live.delete(s)) return;
    s.info.open = false;
    if (code === grpc.status.OK) s.call.end();
    else s.call.emit('error', { code, details, metadata: new grpc.Metadata() });
  }

  #matches(sub: Subscription, name: string, stored: Stored | undefined): boolean {
    if (sub.wildcard || sub.names.has(name)) return true;
    return stored?.aliases.some((a) => sub.names.has(a)) ?? false;
  }

  /** Push stored `names` (and `removed`) that the stream subscribes to, in one response. */
  #pushStored(s: LiveStream, url: string, names: string[], removed: string[]): void {
    const sub = s.subs.get(url);
    if (!sub) return;
    const store = this.#storeOf(url);
    const send = names.filter((n) => {
      const stored = store.get(n);
      return stored !== undefined && this.#matches(sub, n, stored);
    });
    const gone = removed.filter((n) => this.#matches(sub, n, undefined));
    this.#respond(s, url, send, gone, false);
  }

  /** Write one response with the stored `names` and the `removed` names. */
  #respond(s: LiveStream, url: string, names: string[], removed: string[], always: boolean): void {
    if (!always && names.length === 0 && removed.length === 0) return;
    const store = this.#storeOf(url);
    const resources = names.map((name) => {
      const stored = store.get(name)!;
      return {
        name,
        version: stored.version,
        aliases: stored.aliases,
        resource: { type_url: url, value: stored.body },
      };
    });
    s.call.write({ typeUrl: url, nonce: this.#nextNonce(), resources, removedResources: removed });
  }

  #onRequest(s: LiveStream, req: DeltaRequest): void {
    const url = req.typeUrl ?? '';
    const node = req.node
      ? { id: req.node.id ?? '', metadata: fromProtoStruct(req.node.metadata ?? {}) }
      : undefined;
    if (node) s.info.node = node;
    const subscribe = req.resourceNamesSubscribe ?? [];
    const unsubscribe = req.resourceNamesUnsubscribe ?? [];
    const initial = !s.subs.has(url);
    const record: RecordedRequest = {
      stream: s.info.id,
      kind: initial
        ? 'initial'
        : req.errorDetail
          ? 'nack'
          : subscribe.length + unsubscribe.length > 0
            ? 'subscribe'
            : 'ack',
      typeUrl: url,
      subscribe,
      unsubscribe,
      initialResourceVersions: { ...req.initialResourceVersions },
      responseNonce: req.responseNonce ?? '',
      ...(node ? { node } : {}),
      ...(req.errorDetail
        ? {
            errorDetail: {
              code: req.errorDetail.code ?? 0,
              message: req.errorDetail.message ?? '',
            },
          }
        : {}),
    };
    this.requests.push(record);

    if (!this.#types.has(url)) {
      this.#notify();
      return;
    }
    const store = this.#storeOf(url);
    let sub = s.subs.get(url);
    if (!sub) {
      sub = { wildcard: subscribe.length === 0 && unsubscribe.length === 0, names: new Set() };
      s.subs.set(url, sub);
    }
    const added: string[] = [];
    for (const n of subscribe) {
      if (n === '*') sub.wildcard = true;
      else if (!sub.names.has(n)) {
        sub.names.add(n);
        added.push(n);
      }
    }
    for (const n of unsubscribe) {
      if (n === '*') sub.wildcard = false;
      else sub.names.delete(n);
    }

    if (initial) {
      const known = record.initialResourceVersions;
      const send: string[] = [];
      for (const [name, stored] of store) {
        if (this.#matches(sub, name, stored) && known[name] !== stored.version) send.push(name);
      }
      const removed = Object.keys(known).filter((n) => !store.has(n));
      for (const n of added) if (!this.#resolve(store, n)) removed.push(n);
      // Always answer the initial request, even with nothing, as istiod does.
      this.#respond(s, url, send, removed, true);
    } else if (added.length > 0) {
      const found: string[] = [];
      const missing: string[] = [];
      for (const n of added) {
        const name = this.#resolve(store, n);
        if (name) found.push(name);
        else missing.push(n);
      }
      // Unknown names are answered as removed, which is how a client learns they do not exist.
      this.#respond(s, url, found, missing, true);
    }
    this.#notify();
  }

  #resolve(store: Map<string, Stored>, nameOrAlias: string): string | undefined {
    if (store.has(nameOrAlias)) return nameOrAlias;
    for (const [name, stored] of store) if (stored.aliases.includes(nameOrAlias)) return name;
    return undefined;
  }

  async #listen(port: number): Promise<void> {
    const server = new grpc.Server({ 'grpc.max_receive_message_length': 200 * 1024 * 1024 });
    const service: grpc.ServiceDefinition = {
      DeltaAggregatedResources: {
        path: DELTA_ADS_PATH,
        requestStream: true,
        responseStream: true,
        requestSerialize: (r: DeltaRequest) =>
          toBuffer(pb.DeltaDiscoveryRequest.encode(r).finish()),
        requestDeserialize: (b: Buffer) => pb.DeltaDiscoveryRequest.decode(b),
        responseSerialize: (r: DeltaResponse | Buffer) =>
          Buffer.isBuffer(r) ? r : toBuffer(pb.DeltaDiscoveryResponse.encode(r).finish()),
        responseDeserialize: (b: Buffer) => pb.DeltaDiscoveryResponse.decode(b),
      },
      StreamAggregatedResources: {
        path: '/envoy.service.discovery.v3.AggregatedDiscoveryService/StreamAggregatedResources',
        requestStream: true,
        responseStream: true,
        requestSerialize: (r: Buffer) => r,
        requestDeserialize: (b: Buffer) => b,
        responseSerialize: (r: Buffer) => r,
        responseDeserialize: (b: Buffer) => b,
      },
    };
    server.addService(service, {
      DeltaAggregatedResources: (
        call: grpc.ServerDuplexStream<DeltaRequest, DeltaResponse | Buffer>,
      ) => this.#accept(call),
      StreamAggregatedResources: (call: grpc.ServerDuplexStream<Buffer, Buffer>) => {
        call.emit('error', {
          code: grpc.status.UNIMPLEMENTED,
          details: 'only delta xDS is served',
        });
      },
    });
    const tls = this.#opts.tls;
    const creds = tls
      ? grpc.ServerCredentials.createSsl(
          null,
          [{ private_key: Buffer.from(tls.key), cert_chain: Buffer.from(tls.cert) }],
          false,
        )
      : grpc.ServerCredentials.createInsecure();
    const host = this.#opts.host ?? '127.0.0.1';
    const bindHost = host.includes(':') ? `[${host}]` : host;
    this.#port = await new Promise<number>((resolve, reject) =>
      server.bindAsync(`${bindHost}:${port}`, creds, (err, bound) => {
        if (err) {
          server.forceShutdown();
          reject(
            new XdsError('ERR_XDS_INVALID_OPTIONS', `cannot listen: ${err.message}`, {
              cause: err,
            }),
          );
        } else resolve(bound);
      }),
    );
    this.#server = server;
  }

  #accept(call: grpc.ServerDuplexStream<DeltaRequest, DeltaResponse | Buffer>): void {
    const metadata: Record<string, string> = {};
    for (const [k, v] of Object.entries(call.metadata.getMap())) metadata[k] = String(v);
    const info: StreamInfo = { id: this.streams.length + 1, metadata, open: true };
    this.streams.push(info);
    const s: LiveStream = { info, call, subs: new Map() };
    this.#live.add(s);
    call.sendMetadata(new grpc.Metadata());
    call.on('data', (req: DeltaRequest) => this.#onRequest(s, req));
    const gone = () => {
      if (this.#live.delete(s)) info.open = false;
      this.#notify();
    };
    call.on('end', () => {
      if (this.#live.has(s)) this.#end(s, grpc.status.OK, '');
      gone();
    });
    call.on('cancelled', gone);
    call.on('error', gone);
    this.#notify();
  }
}
