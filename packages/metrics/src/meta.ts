import { Counter, Gauge, type Registry } from 'prom-client';
import { MetricsError } from './errors.js';
import { assertRegistry, type MetricDefinition } from './registry.js';

export const BUILD_METRIC = {
  name: 'istio_build',
  type: 'gauge',
  help: 'Istio component build info',
  labelNames: ['component', 'tag'],
  stable: true,
} as const satisfies MetricDefinition;

export interface BuildInfoOptions {
  registry: Registry;
  /** The Istio version this build corresponds to (ztunnel reports Istio's, not its own). */
  tag: string;
  /** Default `ztunnel`. */
  component?: string;
}

/** Registers `istio_build{component,tag} 1`. */
export function registerBuildInfo(options: BuildInfoOptions): Gauge<'component' | 'tag'> {
  const registry = assertRegistry(options?.registry, [BUILD_METRIC.name]);
  const gauge = new Gauge({
    name: BUILD_METRIC.name,
    help: BUILD_METRIC.help,
    labelNames: BUILD_METRIC.labelNames,
    registers: [registry],
  });
  gauge.set({ component: options.component || 'ztunnel', tag: options.tag || 'unknown' }, 1);
  return gauge;
}

export const XDS_METRICS = {
  terminations: {
    name: 'istio_xds_connection_terminations_total',
    type: 'counter',
    help: 'The total number of completed connections to xds server (unstable)',
    labelNames: ['reason'],
    stable: false,
  },
  messages: {
    name: 'istio_xds_message_total',
    type: 'counter',
    help: 'Total number of messages received (unstable)',
    labelNames: ['url'],
    stable: false,
  },
  messageBytes: {
    name: 'istio_xds_message_bytes_total',
    type: 'counter',
    help: 'Total number of bytes received (unstable)',
    labelNames: ['url'],
    stable: false,
  },
} as const satisfies Record<string, MetricDefinition>;

/** Why an xDS stream ended, as ztunnel labels it. */
export type XdsTerminationReason = 'ConnectionError' | 'Error' | 'Reconnect' | 'Complete';
const REASONS: ReadonlySet<string> = new Set(['ConnectionError', 'Error', 'Reconnect', 'Complete']);

export interface XdsMetricsOptions {
  registry: Registry;
}

/** ztunnel's xDS client counters. Feed them from `@mesh/xds-client` events. */
export class XdsMetrics {
  readonly #terminations: Counter<'reason'>;
  readonly #messages: Counter<'url'>;
  readonly #bytes: Counter<'url'>;

  constructor(options: XdsMetricsOptions) {
    const registry = assertRegistry(
      options?.registry,
      Object.values(XDS_METRICS).map((m) => m.name),
    );
    const counter = <L extends string>(def: MetricDefinition) =>
      new Counter<L>({
        name: def.name,
        help: def.help,
        labelNames: def.labelNames as L[],
        registers: [registry],
      });
    this.#terminations = counter<'reason'>(XDS_METRICS.terminations);
    this.#messages = counter<'url'>(XDS_METRICS.messages);
    this.#bytes = counter<'url'>(XDS_METRICS.messageBytes);
  }

  /** One xDS stream ended for `reason`. */
  connectionTerminated(reason: XdsTerminationReason): void {
    if (!REASONS.has(reason)) {
      throw new MetricsError(
        'ERR_METRICS_INVALID_LABEL',
        `invalid xDS termination reason ${String(reason)}`,
      );
    }
    this.#terminations.inc({ reason });
  }

  /** One DeltaDiscoveryResponse of `typeUrl` arrived carrying `bytes` of resource payload. */
  messageReceived(typeUrl: string, bytes: number): void {
    if (!(typeof bytes === 'number' && bytes >= 0 && bytes <= Number.MAX_SAFE_INTEGER)) {
      throw new MetricsError(
        'ERR_METRICS_INVALID_BYTE_COUNT',
        `xDS message size must be a finite non-negative number, got ${String(bytes)}`,
      );
    }
    const url = typeUrl || 'unknown';
    this.#messages.inc({ url });
    this.#bytes.inc({ url }, bytes);
  }
}
