import { EventEmitter } from 'node:events';
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { type CertificateSource, IstioIdentity } from '@mesh/spiffe';
import { Gauge, Registry } from 'prom-client';
import { createAdminServer } from './admin/admin-server.js';
import { configDump } from './admin/config-dump.js';
import { listen } from './admin/listen.js';
import { createReadinessServer } from './admin/readiness-server.js';
import { createStatsServer } from './admin/stats-server.js';
import type { ZtunnelConfig } from './config/settings.js';
import { ZtunnelError } from './errors.js';
import { CertificateTracker } from './identity/tracker.js';
import { createLogger, type Logger } from './logging.js';
import { Readiness } from './readiness.js';
import { LocalConfigSource } from './state/local-source.js';
import { StateStore } from './state/store.js';

export const VERSION = '0.1.0';

export interface ZtunnelOptions {
  config: ZtunnelConfig;
  /** Root logger; one is built from the config's log settings when omitted. */
  logger?: Logger;
  /** Registry for /metrics; a fresh one when omitted (never the global default). */
  registry?: Registry;
  /** Where certificates come from; by default the Istio CA (CA_ADDRESS) or the embedded CA. */
  certificateSource?: CertificateSource;
  signal?: AbortSignal;
}

export interface ZtunnelEvents {
  /** POST /quitquitquit: the process owner should call `close()` and exit. */
  quit: [];
}

/** Bound listener addresses, by listener. Absent when the listener is disabled. */
export interface ZtunnelAddresses {
  admin: AddressInfo;
  stats: AddressInfo;
  readiness: AddressInfo;
  inbound?: AddressInfo;
  inboundPlaintext?: AddressInfo;
  outbound?: AddressInfo;
  socks5?: AddressInfo;
}

/**
 * The node proxy: state from the local config and/or xDS, certificates, the admin, stats and
 * readiness servers, and one proxy instance per served workload.
 */
export class Ztunnel extends EventEmitter<ZtunnelEvents> {
  readonly config: ZtunnelConfig;
  readonly logger: Logger;
  readonly registry: Registry;
  readonly store = new StateStore();
  readonly readiness = new Readiness();
  readonly certificates: CertificateTracker;
  readonly addresses = {} as ZtunnelAddresses;
  readonly #components = new Map<string, Logger>();
  readonly #servers: Server[] = [];
  readonly #local: LocalConfigSource;
  #closing: Promise<void> | undefined;

  private constructor(options: ZtunnelOptions, certificateSource: CertificateSource) {
    super();
    this.config = options.config;
    this.logger =
      options.logger ??
      createLogger({ level: this.config.logLevel, format: this.config.logFormat });
    this.registry = options.registry ?? new Registry();
    this.certificates = new CertificateTracker(certificateSource);
    this.#local = new LocalConfigSource(this.store, this.component('state'));
    new Gauge({
      name: 'istio_build',
      help: 'Istio component build info',
      labelNames: ['component', 'tag'],
      registers: [this.registry],
    }).set({ component: 'ztunnel', tag: VERSION }, 1);
  }

  /** A per-subsystem child logger whose level `/logging` can change on its own. */
  component(name: string): Logger {
    let l = this.#components.get(name);
    if (!l) {
      l = this.logger.child({ component: name });
      this.#components.set(name, l);
    }
    return l;
  }

  /**
   * Starts everything. Throws `ERR_ZTUNNEL_LOCAL_CONFIG_INVALID` (bad local config),
   * `ERR_ZTUNNEL_WORKLOAD_UNKNOWN` (the dedicated workload is in no configuration source) or
   * `ERR_ZTUNNEL_LISTEN_FAILED`; on failure everything already started is closed again.
   */
  static async start(options: ZtunnelOptions): Promise<Ztunnel> {
    const source = options.certificateSource;
    if (!source) {
      throw new ZtunnelError('ERR_ZTUNNEL_CA_UNAVAILABLE', 'no certificate source configured');
    }
    const zt = new Ztunnel(options, source);
    try {
      await zt.#start(options.signal);
    } catch (err) {
      zt.destroy();
      throw err;
    }
    return zt;
  }

  async #start(signal?: AbortSignal): Promise<void> {
    const c = this.config;
    const stateDone = this.readiness.register('state');
    // Readiness first, so probes see "not ready" rather than a refused connection while starting.
    this.addresses.readiness = await this.#serve(
      createReadinessServer(this.readiness),
      c.readinessAddress,
      'readiness server',
    );
    if (c.localXds !== undefined) this.#local.loadInline(c.localXds);
    if (c.localXdsPath !== undefined) await this.#local.loadFile(c.localXdsPath, { signal });
    if (c.xdsAddress === undefined) stateDone();

    this.addresses.admin = await this.#serve(
      createAdminServer({
        configDump: () => configDump(this.store, this.certificates.statuses(), this.config),
        loggers: { root: this.logger, components: this.#components },
        quit: () => this.emit('quit'),
      }),
      c.adminAddress,
      'admin server',
    );
    this.addresses.stats = await this.#serve(
      createStatsServer(this.registry),
      c.statsAddress,
      'stats server',
    );

    if (c.proxyMode === 'dedicated' && c.workloadInfo) {
      const info = c.workloadInfo;
      const workload = this.store.findWorkload(info);
      if (!workload && c.xdsAddress === undefined) {
        throw new ZtunnelError(
          'ERR_ZTUNNEL_WORKLOAD_UNKNOWN',
          `PROXY_WORKLOAD_INFO names ${info.namespace}/${info.name}/${info.serviceAccount}, but the local config has no workload with namespace "${info.namespace}", name "${info.name}" and serviceAccount "${info.serviceAccount}"`,
        );
      }
      const identity = IstioIdentity.of({
        trustDomain: workload?.trustDomain || c.trustDomain,
        namespace: info.namespace,
        serviceAccount: info.serviceAccount,
      });
      const certDone = this.readiness.register(`certificate ${identity}`);
      this.certificates
        .getCertificate(identity, { signal })
        .then(certDone, (err: Error) =>
          this.component('identity').error(
            { err, identity: identity.toString() },
            'cannot fetch the workload certificate',
          ),
        );
    }
    this.logger.info({ addresses: this.#addressText() }, 'ztunnel started');
  }

  #addressText(): Record<string, string> {
    return Object.fromEntries(
      Object.entries(this.addresses).map(([k, a]: [string, AddressInfo]) => [
        k,
        `${a.family === 'IPv6' ? `[${a.address}]` : a.address}:${a.port}`,
      ]),
    );
  }

  async #serve(
    server: Server,
    address: ZtunnelConfig['adminAddress'],
    what: string,
  ): Promise<AddressInfo> {
    const info = await listen(server, address, what);
    this.#servers.push(server);
    return info;
  }

  /**
   * Graceful shutdown: readiness fails first, then listeners stop accepting, HBONE servers send
   * GOAWAY, and open tunnels get CONNECTION_TERMINATION_DEADLINE before they are closed.
   */
  close(): Promise<void> {
    this.#closing ??= (async () => {
      this.readiness.drain();
      this.logger.info({ deadlineMs: this.config.connectionTerminationDeadline }, 'draining');
      this.#local.close();
      for (const s of this.#servers) {
        s.close();
        s.closeAllConnections();
      }
      this.logger.info('ztunnel stopped');
    })();
    return this.#closing;
  }

  /** Immediate stop: every listener and connection closed now. */
  destroy(): void {
    this.readiness.drain();
    this.#local.close();
    for (const s of this.#servers) {
      s.close();
      s.closeAllConnections();
    }
  }
}
