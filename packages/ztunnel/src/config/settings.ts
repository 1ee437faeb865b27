import {
  type BindAddress,
  bindAddress,
  boolean,
  bytes,
  duration,
  integer,
  oneOf,
  type Parser,
  text,
  type WorkloadInfo,
  workloadInfo,
} from './values.js';

export type ProxyMode = 'shared' | 'dedicated';
export type LogFormat = 'json' | 'plain';
export type LogLevel = 'trace' | 'debug' | 'info' | 'warn' | 'error' | 'fatal';

/** The one typed configuration object of the ztunnel binary. Durations are milliseconds. */
export interface ZtunnelConfig {
  proxyMode: ProxyMode;
  workloadInfo: WorkloadInfo | undefined;
  localXdsPath: string | undefined;
  localXds: string | undefined;
  xdsAddress: string | undefined;
  caAddress: string | undefined;
  xdsRootCa: string;
  caRootCa: string;
  authToken: string | undefined;
  clusterId: string;
  trustDomain: string;
  network: string;
  podName: string | undefined;
  podNamespace: string | undefined;
  serviceAccount: string | undefined;
  nodeName: string | undefined;
  instanceIp: string | undefined;
  secretTtl: number;
  packetMark: number | undefined;
  poolMaxStreamsPerConnection: number;
  poolUnusedReleaseTimeout: number;
  http2StreamWindowSize: number;
  http2ConnectionWindowSize: number;
  http2FrameSize: number;
  connectionTerminationDeadline: number;
  enableSocks5: boolean;
  ipv6Enabled: boolean;
  /** Source-IP preservation on inbound dials: `undefined` = when the process may. */
  enableOrigSrc: boolean | undefined;
  /** Proxy metadata: every `ISTIO_META_<KEY>` variable, prefix stripped. */
  proxyMetadata: Record<string, string>;
  adminAddress: BindAddress;
  statsAddress: BindAddress;
  readinessAddress: BindAddress;
  inboundAddress: BindAddress;
  inboundPlaintextAddress: BindAddress;
  outboundAddress: BindAddress;
  socks5Address: BindAddress;
  hbonePort: number;
  caDir: string;
  logFormat: LogFormat;
  logLevel: LogLevel;
}

export interface SettingSpec {
  key: keyof ZtunnelConfig;
  /** Environment variable; `undefined` for settings reachable only by flag or file. */
  env: string | undefined;
  /** Long flag without the leading dashes. */
  flag: string;
  /** Placeholder shown in `--help`. */
  arg: string;
  parse: Parser<unknown>;
  /** Default value; a function when it depends on other settings. */
  default:
    | unknown
    | ((c: Partial<ZtunnelConfig>, env: Record<string, string | undefined>) => unknown);
  /** Default as documented. */
  defaultText: string;
  description: string;
  /** `true` for settings that are ours and not ztunnel's. */
  extension?: boolean;
}

const anyHost = (c: Partial<ZtunnelConfig>) => (c.ipv6Enabled === false ? '0.0.0.0' : '::');

function listener(
  key: keyof ZtunnelConfig,
  env: string,
  flag: string,
  port: number,
  host: 'any' | 'localhost',
  what: string,
): SettingSpec {
  return {
    key,
    env,
    flag,
    arg: 'host:port',
    parse: bindAddress,
    default: (c: Partial<ZtunnelConfig>) => ({
      host: host === 'any' ? anyHost(c) : '127.0.0.1',
      port,
    }),
    defaultText:
      host === 'any'
        ? `[::]:${port} (0.0.0.0:${port} when IPV6_ENABLED=false)`
        : `127.0.0.1:${port}`,
    description: `Bind address of ${what}.`,
    extension: true,
  };
}

/**
 * Every setting, in documentation order. The CLI options, the environment reader, the settings
 * file reader and the configuration reference are all derived from this table.
 */
export const SETTINGS: readonly SettingSpec[] = [
  {
    key: 'proxyMode',
    env: 'PROXY_MODE',
    flag: 'proxy-mode',
    arg: 'mode',
    parse: oneOf(['shared', 'dedicated'] as const),
    default: 'dedicated',
    defaultText: 'dedicated',
    description:
      '`dedicated`: one workload (PROXY_WORKLOAD_INFO), listeners in this network namespace. `shared` (in-pod, fed by istio-cni) is not implemented yet; ztunnel defaults to `shared`.',
  },
  {
    key: 'workloadInfo',
    env: 'PROXY_WORKLOAD_INFO',
    flag: 'workload-info',
    arg: 'ns/name/sa',
    parse: workloadInfo,
    default: undefined,
    defaultText: '(required in dedicated mode)',
    description:
      'The workload this proxy serves, as `namespace/name/serviceaccount`; it must exist in the local config or xDS.',
  },
  {
    key: 'localXdsPath',
    env: 'LOCAL_XDS_PATH',
    flag: 'local-xds-path',
    arg: 'file',
    parse: text,
    default: undefined,
    defaultText: '(none)',
    description:
      'Local config file (YAML: workloads, services, policies). Reloaded when it changes. Exclusive with LOCAL_XDS.',
  },
  {
    key: 'localXds',
    env: 'LOCAL_XDS',
    flag: 'local-xds',
    arg: 'yaml',
    parse: text,
    default: undefined,
    defaultText: '(none)',
    description: 'Local config as inline YAML. Exclusive with LOCAL_XDS_PATH.',
  },
  {
    key: 'xdsAddress',
    env: 'XDS_ADDRESS',
    flag: 'xds-address',
    arg: 'url',
    parse: text,
    default: (_c: unknown, env: Record<string, string | undefined>) =>
      env.KUBERNETES_SERVICE_HOST ? 'https://istiod.istio-system.svc:15012' : undefined,
    defaultText: 'https://istiod.istio-system.svc:15012 in Kubernetes, else none (xDS off)',
    description:
      'istiod Delta ADS endpoint (`https://` added when no scheme). Empty disables xDS. Both xDS and the local config may run together.',
  },
  {
    key: 'caAddress',
    env: 'CA_ADDRESS',
    flag: 'ca-address',
    arg: 'url',
    parse: text,
    default: undefined,
    defaultText: '(none: embedded CA)',
    description:
      'Istio CA (IstioCertificateService) endpoint. When unset, certificates come from the embedded CA in ZTUNNEL_CA_DIR.',
  },
  {
    key: 'xdsRootCa',
    env: 'XDS_ROOT_CA',
    flag: 'xds-root-ca',
    arg: 'path|SYSTEM|pem',
    parse: text,
    default: './var/run/secrets/istio/root-cert.pem',
    defaultText: './var/run/secrets/istio/root-cert.pem',
    description:
      'Roots to verify istiod: a file path, `SYSTEM` (Node default roots) or inline PEM.',
  },
  {
    key: 'caRootCa',
    env: 'CA_ROOT_CA',
    flag: 'ca-root-ca',
    arg: 'path|SYSTEM|pem',
    parse: text,
    default: './var/run/secrets/istio/root-cert.pem',
    defaultText: './var/run/secrets/istio/root-cert.pem',
    description: 'Roots to verify the CA: a file path, `SYSTEM` or inline PEM.',
  },
  {
    key: 'authToken',
    env: 'AUTH_TOKEN',
    flag: 'auth-token',
    arg: 'path|token',
    parse: text,
    default: undefined,
    defaultText: './var/run/secrets/tokens/istio-token when present',
    description:
      'Bearer JWT for istiod and the CA: a file path (re-read for every request) or the token itself.',
  },
  {
    key: 'clusterId',
    env: 'CLUSTER_ID',
    flag: 'cluster-id',
    arg: 'id',
    parse: text,
    default: 'Kubernetes',
    defaultText: 'Kubernetes (ISTIO_META_CLUSTER_ID wins over CLUSTER_ID)',
    description: 'Cluster name, sent as the `clusterid` header to istiod and the CA.',
  },
  {
    key: 'trustDomain',
    env: 'TRUST_DOMAIN',
    flag: 'trust-domain',
    arg: 'domain',
    parse: text,
    default: 'cluster.local',
    defaultText: 'cluster.local',
    description: "Trust domain of ztunnel's own identity and of the embedded CA.",
  },
  {
    key: 'network',
    env: 'NETWORK',
    flag: 'network',
    arg: 'name',
    parse: text,
    default: '',
    defaultText: '(empty: default network)',
    description: 'The network this proxy is on; workload IPs are looked up on it.',
  },
  {
    key: 'podName',
    env: 'POD_NAME',
    flag: 'pod-name',
    arg: 'name',
    parse: text,
    default: undefined,
    defaultText: '(none)',
    description: 'ztunnel pod name (xDS node id and metadata `NAME`).',
  },
  {
    key: 'podNamespace',
    env: 'POD_NAMESPACE',
    flag: 'pod-namespace',
    arg: 'ns',
    parse: text,
    default: undefined,
    defaultText: '(none)',
    description: 'ztunnel pod namespace (xDS node id and metadata `NAMESPACE`).',
  },
  {
    key: 'serviceAccount',
    env: 'SERVICE_ACCOUNT',
    flag: 'service-account',
    arg: 'sa',
    parse: text,
    default: undefined,
    defaultText: '(none)',
    description: "ztunnel's own service account.",
  },
  {
    key: 'nodeName',
    env: 'NODE_NAME',
    flag: 'node-name',
    arg: 'name',
    parse: text,
    default: undefined,
    defaultText: '(none)',
    description: 'The node this proxy runs on (xDS metadata `NODE_NAME`).',
  },
  {
    key: 'instanceIp',
    env: 'INSTANCE_IP',
    flag: 'instance-ip',
    arg: 'ip',
    parse: text,
    default: undefined,
    defaultText: '1.1.1.1 in the xDS node id',
    description: 'ztunnel pod IP (xDS node id and metadata `INSTANCE_IPS`).',
  },
  {
    key: 'secretTtl',
    env: 'SECRET_TTL',
    flag: 'secret-ttl',
    arg: 'duration',
    parse: duration,
    default: 24 * 3_600_000,
    defaultText: '24h',
    description: 'Requested certificate lifetime; certificates are renewed at half of it.',
  },
  {
    key: 'packetMark',
    env: 'PACKET_MARK',
    flag: 'packet-mark',
    arg: 'mark',
    parse: integer(0, 0xffff_ffff),
    default: undefined,
    defaultText: 'unset in dedicated mode (1337 in shared mode)',
    description:
      'SO_MARK on every socket the proxy opens, so redirection rules skip them. Needs CAP_NET_ADMIN.',
  },
  {
    key: 'poolMaxStreamsPerConnection',
    env: 'POOL_MAX_STREAMS_PER_CONNECTION',
    flag: 'pool-max-streams-per-connection',
    arg: 'n',
    parse: integer(1, 65535),
    default: 100,
    defaultText: '100',
    description: 'HBONE streams per pooled HTTP/2 connection before a new one is opened.',
  },
  {
    key: 'poolUnusedReleaseTimeout',
    env: 'POOL_UNUSED_RELEASE_TIMEOUT',
    flag: 'pool-unused-release-timeout',
    arg: 'duration',
    parse: duration,
    default: 5 * 60_000,
    defaultText: '5m',
    description: 'Idle time after which the pool releases an HBONE connection.',
  },
  {
    key: 'http2StreamWindowSize',
    env: 'HTTP2_STREAM_WINDOW_SIZE',
    flag: 'http2-stream-window-size',
    arg: 'bytes',
    parse: bytes,
    default: 4 * 1024 * 1024,
    defaultText: '4194304 (4 MiB)',
    description: 'HTTP/2 initial stream window of HBONE connections.',
  },
  {
    key: 'http2ConnectionWindowSize',
    env: 'HTTP2_CONNECTION_WINDOW_SIZE',
    flag: 'http2-connection-window-size',
    arg: 'bytes',
    parse: bytes,
    default: 16 * 1024 * 1024,
    defaultText: '16777216 (16 MiB)',
    description: 'HTTP/2 connection window of HBONE connections.',
  },
  {
    key: 'http2FrameSize',
    env: 'HTTP2_FRAME_SIZE',
    flag: 'http2-frame-size',
    arg: 'bytes',
    parse: bytes,
    default: 1024 * 1024,
    defaultText: '1048576 (1 MiB)',
    description: 'HTTP/2 max frame size of HBONE connections (16384..16777215).',
  },
  {
    key: 'connectionTerminationDeadline',
    env: 'CONNECTION_TERMINATION_DEADLINE',
    flag: 'connection-termination-deadline',
    arg: 'duration',
    parse: duration,
    default: 5000,
    defaultText: '5s',
    description: 'On shutdown, how long open tunnels may finish before they are closed.',
  },
  {
    key: 'enableSocks5',
    env: 'UNSTABLE_ENABLE_SOCKS5',
    flag: 'enable-socks5',
    arg: 'bool',
    parse: boolean,
    default: false,
    defaultText: 'false',
    description: 'Run the SOCKS5 listener (no-auth CONNECT) feeding the outbound path.',
  },
  {
    key: 'ipv6Enabled',
    env: 'IPV6_ENABLED',
    flag: 'ipv6-enabled',
    arg: 'bool',
    parse: boolean,
    default: true,
    defaultText: 'true',
    description: 'Listeners without an explicit address bind `[::]` (true) or `0.0.0.0` (false).',
  },
  {
    key: 'enableOrigSrc',
    env: 'ENABLE_ORIG_SRC',
    flag: 'enable-orig-src',
    arg: 'bool',
    parse: boolean,
    default: undefined,
    defaultText: 'unset (best effort)',
    description:
      "Inbound (15008 and 15006) connections to the app come from the client's own IP (IP_TRANSPARENT + IP_FREEBIND, marked PACKET_MARK or 1337 so the in-pod rules route the replies back). Unset: on when the process may (CAP_NET_ADMIN, Linux), else off. `true`: required; startup fails when not possible. `false`: off, the app sees the proxy's address.",
  },
  {
    key: 'proxyMetadata',
    env: undefined,
    flag: 'meta',
    arg: 'KEY=value',
    parse: (t) => {
      const i = t.indexOf('=');
      return i <= 0 ? { invalid: `"${t}" is not KEY=value` } : { [t.slice(0, i)]: t.slice(i + 1) };
    },
    default: () => ({}),
    defaultText: '(from ISTIO_META_* variables)',
    description:
      'Proxy metadata sent to istiod; every `ISTIO_META_<KEY>=value` variable adds `KEY`. The flag may repeat.',
  },
  listener(
    'adminAddress',
    'ZTUNNEL_ADMIN_ADDRESS',
    'admin-address',
    15000,
    'localhost',
    'the admin server (/config_dump, /logging, /quitquitquit)',
  ),
  listener(
    'statsAddress',
    'ZTUNNEL_STATS_ADDRESS',
    'stats-address',
    15020,
    'any',
    'the stats server (/metrics, /stats/prometheus)',
  ),
  listener(
    'readinessAddress',
    'ZTUNNEL_READINESS_ADDRESS',
    'readiness-address',
    15021,
    'any',
    'the readiness server (/healthz/ready)',
  ),
  listener(
    'inboundAddress',
    'ZTUNNEL_INBOUND_ADDRESS',
    'inbound-address',
    15008,
    'any',
    'the inbound HBONE listener',
  ),
  listener(
    'inboundPlaintextAddress',
    'ZTUNNEL_INBOUND_PLAINTEXT_ADDRESS',
    'inbound-plaintext-address',
    15006,
    'any',
    'the inbound plaintext (captured, non-HBONE) listener',
  ),
  listener(
    'outboundAddress',
    'ZTUNNEL_OUTBOUND_ADDRESS',
    'outbound-address',
    15001,
    'any',
    'the outbound capture listener',
  ),
  listener(
    'socks5Address',
    'ZTUNNEL_SOCKS5_ADDRESS',
    'socks5-address',
    15080,
    'localhost',
    'the SOCKS5 listener',
  ),
  {
    key: 'hbonePort',
    env: 'ZTUNNEL_HBONE_PORT',
    flag: 'hbone-port',
    arg: 'port',
    parse: integer(1, 65535),
    default: 15008,
    defaultText: '15008',
    description:
      "Port on which other workloads' inbound HBONE listeners are reached (their IP + this port). Change it only for test meshes on one host.",
    extension: true,
  },
  {
    key: 'caDir',
    env: 'ZTUNNEL_CA_DIR',
    flag: 'ca-dir',
    arg: 'dir',
    parse: text,
    default: './var/run/ztunnel/cacerts',
    defaultText: './var/run/ztunnel/cacerts',
    description:
      "Embedded CA directory in Istio's plug-in CA layout (ca-cert.pem, ca-key.pem, root-cert.pem, cert-chain.pem); created on first run. ztunnels sharing it trust each other.",
    extension: true,
  },
  {
    key: 'logFormat',
    env: 'LOG_FORMAT',
    flag: 'log-format',
    arg: 'format',
    parse: oneOf(['json', 'plain'] as const),
    default: 'json',
    defaultText: 'json',
    description: 'Log line format: `json` (pino) or `plain` (one human-readable line).',
    extension: true,
  },
  {
    key: 'logLevel',
    env: 'LOG_LEVEL',
    flag: 'log-level',
    arg: 'level',
    parse: oneOf(['trace', 'debug', 'info', 'warn', 'error', 'fatal'] as const),
    default: 'info',
    defaultText: 'info',
    description: 'Initial log level; change it at runtime with POST /logging?level=.',
    extension: true,
  },
];
