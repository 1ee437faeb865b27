import type { HboneClient } from '@mesh/hbone';
import type { TrafficMetrics } from '@mesh/metrics';
import type { CertificateSource, IstioIdentity } from '@mesh/spiffe';
import type { Workload } from '@mesh/xds-client';
import type { ZtunnelConfig } from '../config/settings.js';
import type { Logger } from '../logging.js';
import type { StateStore } from '../state/store.js';
import type { Authorize } from './authorize.js';
import type { ConnectionTracker } from './connections.js';
import type { OrigSrc } from './upstream.js';

/** What every listener of one proxy instance shares. */
export interface ProxyContext {
  config: ZtunnelConfig;
  store: StateStore;
  /** uid of the workload this instance serves. */
  workloadUid: string;
  identity: IstioIdentity;
  certificates: CertificateSource;
  authorize: Authorize;
  traffic: TrafficMetrics;
  client: HboneClient;
  connections: ConnectionTracker;
  logger: Logger;
  /** Source address for connections this instance opens (the workload IP when bound to it). */
  localAddress?: string;
  /** Families whose inbound dials to the app come from the client's IP (ENABLE_ORIG_SRC). */
  origSrc: OrigSrc;
  /** Whether `ip:port` is one of this instance's listeners (self-call protection). */
  isOwnListener(ip: string, port: number): boolean;
}

/** The served workload, or undefined when it left the state store. */
export function ownWorkload(ctx: ProxyContext): Workload | undefined {
  return ctx.store.workloadByUid(ctx.workloadUid);
}
