import type { Registry } from 'prom-client';
import { MetricsError } from './errors.js';

/** How one series family is registered: name as exposed in the text format, and HELP. */
export interface MetricDefinition {
  readonly name: string;
  readonly type: 'counter' | 'gauge';
  readonly help: string;
  readonly labelNames: readonly string[];
  /** ztunnel marks unstable metrics with "(unstable)" in HELP. */
  readonly stable: boolean;
}

/** Throws unless `registry` looks like a prom-client Registry and has none of `names`. */
export function assertRegistry(registry: Registry | undefined, names: readonly string[]): Registry {
  if (
    registry === undefined ||
    registry === null ||
    typeof registry.registerMetric !== 'function' ||
    typeof registry.getSingleMetric !== 'function'
  ) {
    throw new MetricsError(
      'ERR_METRICS_REGISTRY_REQUIRED',
      'pass the prom-client Registry to register on as `registry`',
    );
  }
  for (const name of names) {
    if (registry.getSingleMetric(name) !== undefined) {
      throw new MetricsError(
        'ERR_METRICS_ALREADY_REGISTERED',
        `the registry already has a metric named ${name}`,
      );
    }
  }
  return registry;
}
