import { existsSync } from 'node:fs';
import type { Authorization } from '@mesh/l4-rbac';
import { XdsMetrics } from '@mesh/metrics';
import {
  ADDRESS_TYPE_URL,
  type Address,
  AUTHORIZATION_TYPE_URL,
  DeltaAdsClient,
  type ResourceChange,
} from '@mesh/xds-client';
import type { Registry } from 'prom-client';
import type { ZtunnelConfig } from '../config/settings.js';
import type { Logger } from '../logging.js';
import type { StateStore } from './store.js';

const DEFAULT_TOKEN = './var/run/secrets/tokens/istio-token';

/** AUTH_TOKEN as ztunnel reads it: a file path (re-read per connect) or the token itself. */
export function tokenOption(
  authToken: string | undefined,
): { file: string } | { value: string } | undefined {
  if (authToken === undefined)
    return existsSync(DEFAULT_TOKEN) ? { file: DEFAULT_TOKEN } : undefined;
  if (authToken.includes('/') || existsSync(authToken)) return { file: authToken };
  return { value: authToken };
}

/**
 * Feeds the store from istiod over Delta ADS (Address and Authorization, wildcard). The store
 * keeps serving the local config while xDS is down; readiness waits for the first ACK per type.
 */
export class XdsSource {
  readonly client: DeltaAdsClient;
  readonly #store: StateStore;
  readonly #logger: Logger;

  constructor(store: StateStore, config: ZtunnelConfig, logger: Logger, registry?: Registry) {
    this.#store = store;
    this.#logger = logger;
    const address = config.xdsAddress!;
    const token = tokenOption(config.authToken);
    this.client = new DeltaAdsClient({
      address,
      ...(address.startsWith('http://') ? {} : { rootCa: config.xdsRootCa }),
      ...(token ? { token } : {}),
      clusterId: config.clusterId,
      node: {
        podName: config.podName ?? config.workloadInfo?.name ?? 'ztunnel',
        podNamespace: config.podNamespace ?? config.workloadInfo?.namespace ?? 'istio-system',
        ...(config.instanceIp ? { instanceIp: config.instanceIp } : {}),
        ...(config.nodeName ? { nodeName: config.nodeName } : {}),
        metadata: config.proxyMetadata,
      },
    });
    this.client.on('change', (change) => this.#apply(change));
    this.client.on('nack', (n) =>
      this.#logger.warn({ typeUrl: n.typeUrl, error: n.message }, 'rejected xDS resources'),
    );
    this.client.on('disconnect', (d) =>
      this.#logger.warn(
        { reason: d.reason, err: d.error, retryInMs: d.retryInMs },
        'xDS stream ended; reconnecting',
      ),
    );
    this.client.on('connect', ({ attempt }) =>
      this.#logger.info({ address, attempt }, 'xDS stream connected'),
    );
    if (registry) this.#countInto(new XdsMetrics({ registry }));
  }

  /** istio_xds_* series: one message (and its bytes) per ACK/NACK, one termination per stream end. */
  #countInto(metrics: XdsMetrics): void {
    const seen: Record<string, number> = {};
    const onResponse = ({ typeUrl }: { typeUrl: string }) => {
      const total = this.client.counters().messageBytes[typeUrl] ?? 0;
      metrics.messageReceived(typeUrl, total - (seen[typeUrl] ?? 0));
      seen[typeUrl] = total;
    };
    this.client.on('ack', onResponse);
    this.client.on('nack', onResponse);
    this.client.on('disconnect', (d) => metrics.connectionTerminated(d.reason));
  }

  #apply(change: ResourceChange): void {
    if (change.typeUrl === ADDRESS_TYPE_URL) {
      for (const r of [...change.added, ...change.updated])
        this.#store.upsertAddress(r.value as Address);
      for (const r of change.removed) this.#store.removeAddress(r.name);
    } else if (change.typeUrl === AUTHORIZATION_TYPE_URL) {
      for (const r of [...change.added, ...change.updated])
        this.#store.upsertPolicy(r.value as Authorization);
      for (const r of change.removed) this.#store.removePolicy(r.name);
    }
  }

  /** Starts the stream; `onReady` runs once every type has been ACKed once. */
  start(onReady: () => void): void {
    this.client.once('ready', onReady);
    this.client.start();
  }

  close(): Promise<void> {
    return this.client.close();
  }
}
