import { EventEmitter } from 'node:events';
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { registerBuildInfo, TrafficMetrics } from '@mesh/metrics';
import { type CertificateSource, type IstioIdentity, SecretManager } from '@mesh/spiffe';
import type { Workload } from '@mesh/xds-client';
import { Registry } from 'prom-client';
import { createAdminServer } from './admin/admin-server.js';
import { configDump, dumpCertificate } from './admin/config-dump.js';
import { listen } from './admin/listen.js';
import { createReadinessServer } from './admin/readiness-server.js';
import { createStatsServer } from './admin/stats-server.js';
import { loadLocalConfigFile, parseLocalConfig } from './config/local-config.js';
import type { ZtunnelConfig } from './config/settings.js';
import { ZtunnelError } from './errors.js';
import { createCertificateSource } from './identity/source.js';
import { CertificateTracker } from './identity/tracker.js';
import { createLogger, type Logger } from './logging.js';
import type { Authorize } from './proxy/authorize.js';
import { ProxyInstance } from './proxy/instance.js';
import { storeAuthorizer } from './proxy/rbac.js';
import { logAccess } from './proxy/telemetry.js';
import { resolveOrigSrc } from './proxy/upstream.js';
import { Readiness } from './readiness.js';
import { workloadIdentity } from './state/identity.js';
import { LocalConfigSource } from './state/local-source.js';
import { StateStore } from './state/store.js';
import { XdsSource } from './state/xds-source.js';

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
  readonly #authorize: Authorize;
  readonly #proxies: ProxyInstance[] = [];
  readonly #timers = new Set<NodeJS.Timeout>();
  readonly #source: CertificateSource;
  readonly #ownsSource: boolean;
  readonly traffic: TrafficMetrics;
  /** The xDS client feeding the store, when XDS_ADDRESS is set. */
  xds: XdsSource | undefined;
  /** The dedicated-mode proxy instance, once its workload is known. */
  proxy: ProxyInstance | undefined;
  #closing: Promise<void> | undefined;

  private constructor(
    options: ZtunnelOptions,
    certificateSource: CertificateSource,
    ownsSource: boolean,
  ) {
    super();
    this.#ownsSource = ownsSource;
    this.config = options.config;
    this.logger =
      options.logger ??
      createLogger({ level: this.config.logLevel, format: this.config.logFormat });
    this.registry = options.registry ?? new Registry();
    this.certificates = new CertificateTracker(certificateSource);
    this.#source = certificateSource;
    this.#local = new LocalConfigSource(this.store, this.component('state'));
    this.#authorize = storeAuthorizer(this.store);
    this.traffic = new TrafficMetrics({ registry: this.registry });
    logAccess(this.traffic, this.component('access'));
    registerBuildInfo({ registry: this.registry, component: 'ztunnel', tag: VERSION });
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
   * `ERR_ZTUNNEL_WORKLOAD_UNKNOWN` (the dedicated workload is in no configuration source),
   * `ERR_ZTUNNEL_ORIG_SRC_UNAVAILABLE` or `ERR_ZTUNNEL_LISTEN_FAILED`; on failure everything already started is closed again.
   */
  static async start(options: ZtunnelOptions): Promise<Ztunnel> {
    const logger =
      options.logger ??
      createLogger({ level: options.config.logLevel, format: options.config.logFormat });
    // An invalid local config must fail before anything (even the CA directory) is touched.
    if (options.config.localXdsPath !== undefined)
      await loadLocalConfigFile(options.config.localXdsPath);
    if (options.config.localXds !== undefined)
      parseLocalConfig(options.config.localXds, 'LOCAL_XDS');
    // ENABLE_ORIG_SRC=true that cannot be honoured fails before the CA is touched, too.
    resolveOrigSrc(options.config);
    const source =
      options.certificateSource ??
      (await createCertificateSource(options.config, {
        logger: logger.child({ component: 'identity' }),
        ...(options.signal ? { signal: options.signal } : {}),
      }));
    const zt = new Ztunnel({ ...options, logger }, source, options.certificateSource === undefined);
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
    const stateDone = this.readiness.register('local config');
    // Readiness first, so probes see "not ready" rather than a refused connection while starting.
    this.addresses.readiness = await this.#serve(
      createReadinessServer(this.readiness),
      c.readinessAddress,
      'readiness server',
    );
    if (c.localXds !== undefined) this.#local.loadInline(c.localXds);
    if (c.localXdsPath !== undefined) await this.#local.loadFile(c.localXdsPath, { signal });
    stateDone();
    if (c.xdsAddress !== undefined) {
      this.xds = new XdsSource(this.store, c, this.component('xds'), this.registry);
      this.xds.start(this.readiness.register('xds'));
    }

    this.addresses.admin = await this.#serve(
      createAdminServer({
        configDump: () => configDump(this.store, this.#certificateDump(), this.config),
        loggers: { root: this.logger, components: this.#components },
        quit: () => this.emit('quit'),
      }),
      c.adminAddress,
      'admin server',
    );
    this.addresses.stats = await this.#serve(
      createStatsServer(this.registry, () => {
        for (const p of this.#proxies) p.context.connections.flushBytes();
      }),
      c.statsAddress,
      'stats server',
    );

    if (c.proxyMode === 'dedicated' && c.workloadInfo) {
      const info = c.workloadInfo;
      const workload = this.store.findWorkload(info);
      const name = `${info.namespace}/${info.name}/${info.serviceAccount}`;
      if (!workload && c.xdsAddress === undefined) {
        throw new ZtunnelError(
          'ERR_ZTUNNEL_WORKLOAD_UNKNOWN',
          `PROXY_WORKLOAD_INFO names ${name}, but the local config has no workload with namespace "${info.namespace}", name "${info.name}" and serviceAccount "${info.serviceAccount}"`,
        );
      }
      if (workload) {
        await this.#startProxy(workload);
      } else {
        // Wait for xDS to deliver the workload; listeners start then.
        const done = this.readiness.register(`workload ${name}`);
        const onAddresses = () => {
          const w = this.store.findWorkload(info);
          if (!w) return;
          this.store.off('addresses', onAddresses);
          done();
          this.#startProxy(w).catch((err: Error) =>
            this.logger.error({ err }, 'cannot start the proxy'),
          );
        };
        this.store.on('addresses', onAddresses);
      }
    }
    this.store.on('policies', () => this.#recheck());
    this.store.on('addresses', () => this.#recheck());
    this.logger.info({ addresses: this.#addressText() }, 'ztunnel started');
  }

  #recheck(): void {
    for (const p of this.#proxies) {
      const closed = p.recheckPolicies();
      if (closed > 0)
        this.component('inbound').info({ closed }, 'closed connections the new policy denies');
    }
  }

  async #startProxy(workload: Workload): Promise<void> {
    const c = this.config;
    const identity = workloadIdentity(workload, c.trustDomain);
    const proxy = new ProxyInstance({
      config: c,
      store: this.store,
      workloadUid: workload.uid,
      identity,
      certificates: this.certificates,
      authorize: this.#authorize,
      traffic: this.traffic,
      logger: this.component('proxy'),
    });
    this.#proxies.push(proxy);
    const addresses = await proxy.start();
    Object.assign(this.addresses, addresses);
    this.proxy ??= proxy;
    const certDone = this.readiness.register(`certificate ${identity}`);
    this.#fetchCertificate(identity, () => {
      proxy.enableInbound();
      certDone();
    });
  }

  /** Fetches a certificate with backoff (0.5 s doubling to 30 s) until it succeeds or we stop. */
  #fetchCertificate(identity: IstioIdentity, onReady: () => void, delayMs = 500): void {
    if (this.#closing) return;
    this.certificates.getCertificate(identity).then(onReady, (err: Error) => {
      this.component('identity').error(
        { err, identity: identity.toString(), retryInMs: delayMs },
        'cannot fetch the workload certificate',
      );
      const t = setTimeout(
        () => this.#fetchCertificate(identity, onReady, Math.min(delayMs * 2, 30_000)),
        delayMs,
      );
      t.unref();
      this.#timers.add(t);
    });
  }

  /** SecretManager's own dump when certificates come from one, else what the tracker saw. */
  #certificateDump(): unknown[] {
    const s = this.#source;
    return s instanceof SecretManager
      ? s.dump()
      : this.certificates.statuses().map(dumpCertificate);
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
      for (const t of this.#timers) clearTimeout(t);
      await this.xds?.close();
      if (this.#ownsSource && this.#source instanceof SecretManager) await this.#source.close();
      await Promise.all(
        this.#proxies.map((p) => p.close(this.config.connectionTerminationDeadline)),
      );
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
    for (const t of this.#timers) clearTimeout(t);
    void this.xds?.close();
    if (this.#ownsSource && this.#source instanceof SecretManager) void this.#source.close();
    for (const p of this.#proxies) p.destroy();
    for (const s of this.#servers) {
      s.close();
      s.closeAllConnections();
    }
  }
}
