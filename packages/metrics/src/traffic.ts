import { EventEmitter } from 'node:events';
import { performance } from 'node:perf_hooks';
import { Counter, Gauge, type Registry } from 'prom-client';
import {
  type AccessLogFields,
  type AccessLogRecord,
  accessLogChannel,
  direction,
  errorText,
} from './access-log.js';
import { MetricsError } from './errors.js';
import {
  type ConnectionOpen,
  FAILURE_RESPONSE_FLAGS,
  RESPONSE_FLAGS,
  type Reporter,
  type ResponseFlag,
  TRAFFIC_LABEL_NAMES,
  type TrafficLabels,
  trafficLabels,
} from './labels.js';
import { assertRegistry, type MetricDefinition } from './registry.js';

/** The traffic series `TrafficMetrics` registers, as ztunnel names and describes them. */
export const TRAFFIC_METRICS = {
  opened: {
    name: 'istio_tcp_connections_opened_total',
    type: 'counter',
    help: 'The total number of TCP connections opened',
    labelNames: TRAFFIC_LABEL_NAMES,
    stable: true,
  },
  closed: {
    name: 'istio_tcp_connections_closed_total',
    type: 'counter',
    help: 'The total number of TCP connections closed',
    labelNames: TRAFFIC_LABEL_NAMES,
    stable: true,
  },
  received: {
    name: 'istio_tcp_received_bytes_total',
    type: 'counter',
    help: 'The size of total bytes received during request in case of a TCP connection',
    labelNames: TRAFFIC_LABEL_NAMES,
    stable: true,
  },
  sent: {
    name: 'istio_tcp_sent_bytes_total',
    type: 'counter',
    help: 'The size of total bytes sent during response in case of a TCP connection',
    labelNames: TRAFFIC_LABEL_NAMES,
    stable: true,
  },
  failed: {
    name: 'istio_tcp_connections_failed_total',
    type: 'counter',
    help: 'The total number of TCP connections that failed to establish (unstable)',
    labelNames: TRAFFIC_LABEL_NAMES,
    stable: false,
  },
  socketsOpen: {
    name: 'istio_tcp_sockets_open',
    type: 'gauge',
    help: 'The current number of open TCP sockets (unstable)',
    labelNames: ['reporter'],
    stable: false,
  },
} as const satisfies Record<string, MetricDefinition>;

/** Where a connection runs; the access log reports these. */
export interface ConnectionAddresses {
  /** Client address, `ip:port` (`[v6]:port`). */
  src: string;
  /** Next hop: for HBONE the peer's `ip:15008`, otherwise the upstream address. */
  dst: string;
  /** The HBONE `:authority` (the target `ip:port`), for tunnelled connections. */
  hboneAddr?: string;
}

/** How a recorded connection ended. */
export interface ConnectionClose {
  /** `-` (default) or a failure flag; failure flags also count in `..._failed_total`. */
  flag?: ResponseFlag;
  /** Why it ended badly; logged as `error` and raises the log level to `error`. */
  error?: unknown;
}

export interface TrafficMetricsOptions {
  /** The registry to register on. Required: nothing is registered globally. */
  registry: Registry;
}

export interface TrafficMetricsEvents {
  'access-log': [AccessLogRecord];
}

/** @internal A label set's pending increments, pushed into prom-client at scrape time. */
export class Series {
  opened = 0;
  closed = 0;
  failed = 0;
  received = 0;
  sent = 0;
  dirty = false;
  /** Variants of this series closed with a flag other than `-`, resolved once each. */
  flagged: Map<ResponseFlag, Series> | undefined;
  constructor(
    readonly labels: TrafficLabels,
    /** Interned id of each label value (0 = label absent), in TRAFFIC_LABEL_NAMES order. */
    readonly ids: readonly number[],
  ) {}
}

const RESPONSE_FLAG_SET: ReadonlySet<string> = new Set(RESPONSE_FLAGS);
const LABEL_COUNT = TRAFFIC_LABEL_NAMES.length;

/**
 * The label values in TRAFFIC_LABEL_NAMES order. Spelled out so every read is a monomorphic
 * property load: this runs once per connection and a keyed loop was the costliest part.
 */
function labelValues(l: TrafficLabels): (string | undefined)[] {
  return [
    l.reporter,
    l.source_workload,
    l.source_canonical_service,
    l.source_canonical_revision,
    l.source_workload_namespace,
    l.source_principal,
    l.source_app,
    l.source_version,
    l.source_cluster,
    l.destination_service,
    l.destination_service_namespace,
    l.destination_service_name,
    l.destination_workload,
    l.destination_canonical_service,
    l.destination_canonical_revision,
    l.destination_workload_namespace,
    l.destination_principal,
    l.destination_app,
    l.destination_version,
    l.destination_cluster,
    l.request_protocol,
    l.response_flags,
    l.connection_security_policy,
    l.source_region,
    l.source_zone,
    l.destination_region,
    l.destination_zone,
  ];
}

function sameIds(a: readonly number[], b: readonly number[]): boolean {
  for (let i = 0; i < LABEL_COUNT; i++) if (a[i] !== b[i]) return false;
  return true;
}

/**
 * @internal Bookkeeping shared by {@link TrafficMetrics} and its connections: label sets resolved to
 * series, series with pending increments, open connections, and log publishing.
 */
export class Ledger {
  /**
   * Series by a hash of their interned label ids. Label values are mostly the same string
   * objects connection after connection (workload fields, constants), whose hashes V8 keeps,
   * so resolving a label set costs no string building or hashing of a long key.
   */
  readonly #buckets = new Map<number, Series[]>();
  readonly #intern = new Map<string, number>();
  dirty: Series[] = [];
  readonly open = new Set<RecordedConnection>();

  constructor(private readonly events: EventEmitter<TrafficMetricsEvents>) {}

  seriesFor(labels: TrafficLabels): Series {
    const values = labelValues(labels);
    const ids: number[] = [];
    const intern = this.#intern;
    let hash = 0;
    for (let i = 0; i < LABEL_COUNT; i++) {
      const value = values[i];
      let id = 0;
      if (value !== undefined) {
        id = intern.get(value) ?? 0;
        if (id === 0) {
          id = intern.size + 1;
          intern.set(value, id);
        }
      }
      ids.push(id);
      hash = (Math.imul(hash, 31) + id) | 0;
    }
    let bucket = this.#buckets.get(hash);
    if (bucket === undefined) {
      bucket = [];
      this.#buckets.set(hash, bucket);
    }
    for (const series of bucket) if (sameIds(series.ids, ids)) return series;
    const series = new Series(labels, ids);
    bucket.push(series);
    return series;
  }

  markDirty(series: Series): void {
    if (!series.dirty) {
      series.dirty = true;
      this.dirty.push(series);
    }
  }

  /** The series of `base` closed with `flag`, resolved once per base series and flag. */
  flagged(base: Series, flag: ResponseFlag): Series {
    if (flag === '-') return base;
    base.flagged ??= new Map();
    let series = base.flagged.get(flag);
    if (series === undefined) {
      series = this.seriesFor({ ...base.labels, response_flags: flag });
      base.flagged.set(flag, series);
    }
    return series;
  }

  get logging(): boolean {
    return accessLogChannel.hasSubscribers || this.events.listenerCount('access-log') > 0;
  }

  publish(record: AccessLogRecord): void {
    if (accessLogChannel.hasSubscribers) accessLogChannel.publish(record);
    if (this.events.listenerCount('access-log') > 0) this.events.emit('access-log', record);
  }
}

/**
 * ztunnel's traffic metrics on a registry you pass, fed by {@link RecordedConnection}s.
 *
 * The data path only adds numbers to fields of its connection; label sets are resolved once
 * per connection, and the counters are brought up to date when the registry is collected
 * (each scrape), so long-lived connections report their bytes while still open.
 */
export class TrafficMetrics extends EventEmitter<TrafficMetricsEvents> {
  readonly registry: Registry;
  readonly #opened: Counter<string>;
  readonly #closed: Counter<string>;
  readonly #received: Counter<string>;
  readonly #sent: Counter<string>;
  readonly #failed: Counter<string>;
  readonly #ledger = new Ledger(this);
  readonly #sockets: Partial<Record<Reporter, number>> = {};

  constructor(options: TrafficMetricsOptions) {
    super();
    const registry = assertRegistry(
      options?.registry,
      Object.values(TRAFFIC_METRICS).map((m) => m.name),
    );
    this.registry = registry;
    const flush = () => this.flush();
    const counter = (def: MetricDefinition) =>
      new Counter({
        name: def.name,
        help: def.help,
        labelNames: def.labelNames,
        registers: [registry],
        collect: flush,
      });
    this.#opened = counter(TRAFFIC_METRICS.opened);
    this.#closed = counter(TRAFFIC_METRICS.closed);
    this.#received = counter(TRAFFIC_METRICS.received);
    this.#sent = counter(TRAFFIC_METRICS.sent);
    this.#failed = counter(TRAFFIC_METRICS.failed);
    const sockets = this.#sockets;
    new Gauge({
      name: TRAFFIC_METRICS.socketsOpen.name,
      help: TRAFFIC_METRICS.socketsOpen.help,
      labelNames: TRAFFIC_METRICS.socketsOpen.labelNames,
      registers: [registry],
      collect() {
        for (const reporter of ['source', 'destination'] as const) {
          const n = sockets[reporter];
          if (n !== undefined) this.set({ reporter }, n);
        }
      },
    });
  }

  /**
   * Records a connection as opened (counted in `istio_tcp_connections_opened_total`) and
   * returns the handle the data path counts bytes on. Throws `ERR_METRICS_INVALID_LABEL`
   * for a malformed `connection`.
   */
  open(connection: ConnectionOpen, addresses: ConnectionAddresses): RecordedConnection {
    const ledger = this.#ledger;
    const labels = trafficLabels(connection);
    const series = ledger.seriesFor(labels);
    series.opened++;
    ledger.markDirty(series);
    const conn = new RecordedConnection(ledger, series, connection, addresses);
    ledger.open.add(conn);
    if (ledger.logging) {
      ledger.publish({
        level: 'debug',
        msg: 'connection opened',
        fields: accessLogFields(conn, false),
        labels,
      });
    }
    return conn;
  }

  /**
   * Counts `socket` in `istio_tcp_sockets_open{reporter}` until it emits `close`.
   * Works with anything that emits `close` once (net.Socket, tls.TLSSocket, Http2Stream).
   */
  trackSocket(
    socket: { once(event: 'close', listener: () => void): unknown; closed?: boolean },
    reporter: Reporter,
  ): void {
    if (reporter !== 'source' && reporter !== 'destination') {
      throw new MetricsError('ERR_METRICS_INVALID_LABEL', `invalid reporter ${String(reporter)}`);
    }
    // Already closed: its 'close' event has fired and would never decrement the gauge.
    if (socket.closed === true) return;
    this.#sockets[reporter] = (this.#sockets[reporter] ?? 0) + 1;
    socket.once('close', () => {
      this.#sockets[reporter] = (this.#sockets[reporter] ?? 1) - 1;
    });
  }

  /**
   * Logs a connection denied before labels could be built (ztunnel's `log_early_deny`):
   * a `warn` record with addresses, direction and error only; no metric changes.
   */
  earlyDeny(src: string, dst: string, reporter: Reporter, error: unknown): void {
    if (!this.#ledger.logging) return;
    this.#ledger.publish({
      level: 'warn',
      msg: 'connection failed',
      fields: {
        'src.addr': src,
        'dst.addr': dst,
        direction: direction(reporter),
        error: errorText(error),
      },
    });
  }

  /** Connections opened and not yet closed. */
  get openConnections(): number {
    return this.#ledger.open.size;
  }

  /**
   * Closes every open connection with `error` (ztunnel records unfinished connections as
   * closed by drain). For shutdown, after the proxy stopped moving bytes.
   */
  closeAll(error: unknown = new Error('connection closed due to drain')): void {
    for (const conn of [...this.#ledger.open]) conn.close({ error });
  }

  /**
   * Moves bytes counted since the last flush into the registry's counters. Runs on every
   * collect of the registry; call it yourself only to read counters outside a scrape.
   */
  flush(): void {
    const ledger = this.#ledger;
    for (const conn of ledger.open) drain(conn);
    const dirty = ledger.dirty;
    if (dirty.length === 0) return;
    ledger.dirty = [];
    for (const s of dirty) {
      s.dirty = false;
      const labels = s.labels as Record<string, string>;
      if (s.opened > 0) this.#opened.inc(labels, s.opened);
      if (s.closed > 0) this.#closed.inc(labels, s.closed);
      if (s.failed > 0) this.#failed.inc(labels, s.failed);
      if (s.received > 0) this.#received.inc(labels, s.received);
      if (s.sent > 0) this.#sent.inc(labels, s.sent);
      s.opened = s.closed = s.failed = s.received = s.sent = 0;
    }
  }
}

/**
 * One proxied connection. The data path calls {@link addRequestBytes} /
 * {@link addResponseBytes} per chunk (a field addition, no label work) and {@link close} once.
 */
// Module-private access to connection internals, for TrafficMetrics (set in a static block).
let drain: (conn: RecordedConnection) => void;
let accessLogFields: (conn: RecordedConnection, complete: boolean) => AccessLogFields;

export class RecordedConnection {
  static {
    drain = (conn) => conn.#drain();
    accessLogFields = (conn, complete) => conn.#accessLogFields(complete);
  }

  /** Bytes client → server so far (`istio_tcp_received_bytes_total`). */
  requestBytes = 0;
  /** Bytes server → client so far (`istio_tcp_sent_bytes_total`). */
  responseBytes = 0;
  #flushedRequest = 0;
  #flushedResponse = 0;
  #closed = false;
  readonly #start = performance.now();

  /** @internal */
  constructor(
    private readonly ledger: Ledger,
    private readonly series: Series,
    private readonly connection: ConnectionOpen,
    private readonly addresses: ConnectionAddresses,
  ) {}

  get labels(): TrafficLabels {
    return this.series.labels;
  }

  get closed(): boolean {
    return this.#closed;
  }

  /** Counts `n` bytes travelling client → server. */
  addRequestBytes(n: number): void {
    if (!(typeof n === 'number' && n >= 0 && n <= Number.MAX_SAFE_INTEGER)) throw badCount(n);
    this.requestBytes += n;
    // A late chunk after close() is not in the open set any more; hand it over now.
    if (this.#closed) this.#drain();
  }

  /** Counts `n` bytes travelling server → client. */
  addResponseBytes(n: number): void {
    if (!(typeof n === 'number' && n >= 0 && n <= Number.MAX_SAFE_INTEGER)) throw badCount(n);
    this.responseBytes += n;
    if (this.#closed) this.#drain();
  }

  /** Moves unflushed bytes into the series. */
  #drain(): void {
    const req = this.requestBytes - this.#flushedRequest;
    const res = this.responseBytes - this.#flushedResponse;
    if (req === 0 && res === 0) return;
    this.#flushedRequest = this.requestBytes;
    this.#flushedResponse = this.responseBytes;
    const s = this.series;
    s.received += req;
    s.sent += res;
    this.ledger.markDirty(s);
  }

  /**
   * Records the end of the connection: `..._closed_total` (with `response_flags=<flag>`),
   * `..._failed_total` for failure flags, and the access-log record. Idempotent: returns
   * false (and records nothing) when already closed. Bytes counted after close still count.
   */
  close(result: ConnectionClose = {}): boolean {
    if (this.#closed) return false;
    const flag = result.flag ?? '-';
    if (!RESPONSE_FLAG_SET.has(flag)) {
      throw new MetricsError(
        'ERR_METRICS_INVALID_RESPONSE_FLAG',
        `unknown response flag ${JSON.stringify(flag)}; expected one of ${RESPONSE_FLAGS.join(' ')}`,
      );
    }
    this.#closed = true;
    this.ledger.open.delete(this);
    this.#drain();
    const series = this.ledger.flagged(this.series, flag);
    series.closed++;
    if (FAILURE_RESPONSE_FLAGS.has(flag)) series.failed++;
    this.ledger.markDirty(series);
    if (this.ledger.logging) {
      const fields = this.#accessLogFields(true);
      if (result.error !== undefined) fields.error = errorText(result.error);
      this.ledger.publish({
        level: result.error === undefined ? 'info' : 'error',
        msg: 'connection complete',
        fields,
        labels: series.labels,
      });
    }
    return true;
  }

  #accessLogFields(complete: boolean): AccessLogFields {
    const l = this.series.labels;
    const c = this.connection;
    const mtls = l.connection_security_policy === 'mutual_tls';
    const known = (value: string) => (value === 'unknown' ? undefined : value);
    const fields: AccessLogFields = {
      'src.addr': this.addresses.src,
      // ztunnel prefers the pod name, falling back to the canonical service.
      'src.workload': c.source?.name || known(l.source_canonical_service),
      'src.namespace': known(l.source_workload_namespace),
      'src.identity': mtls ? known(l.source_principal) : undefined,
      'src.cluster': known(l.source_cluster),
      'dst.addr': this.addresses.dst,
      'dst.hbone_addr': this.addresses.hboneAddr,
      'dst.service': known(l.destination_service),
      'dst.workload': c.destination?.name || known(l.destination_canonical_service),
      'dst.namespace': known(l.destination_workload_namespace),
      'dst.identity': mtls ? known(l.destination_principal) : undefined,
      'dst.cluster': known(l.destination_cluster),
      direction: direction(l.reporter as Reporter),
    };
    if (complete) {
      // Istio swaps sent/received on the source side (istio/istio#32399); logs unflip it.
      const source = l.reporter === 'source';
      fields.bytes_sent = source ? this.requestBytes : this.responseBytes;
      fields.bytes_recv = source ? this.responseBytes : this.requestBytes;
      fields.duration = `${Math.floor(performance.now() - this.#start)}ms`;
    }
    for (const key of Object.keys(fields) as (keyof AccessLogFields)[]) {
      if (fields[key] === undefined) delete fields[key];
    }
    return fields;
  }
}

function badCount(n: number): MetricsError {
  return new MetricsError(
    'ERR_METRICS_INVALID_BYTE_COUNT',
    `byte count must be a finite non-negative number, got ${String(n)}`,
  );
}
