/**
 * Plain, validated data decoded from Istio's workload discovery resources
 * (`istio.workload.Address`). No protobuf objects cross this boundary: IPs are strings,
 * enums are string unions and istiod/ztunnel defaults are already applied.
 *
 * This module is a contract shared with `@mesh/ztunnel`'s local config parser, which
 * produces the same shapes from ztunnel's YAML file format.
 */

/** Textual IPv4 (`10.0.0.1`) or IPv6 (`fd00::1`) address, normalised as Node prints it. */
export type IpAddress = string;

/** An address on a network. `network` is `''` for the default network. */
export interface NetworkAddress {
  network: string;
  address: IpAddress;
}

/** A service VIP: a host address, or a CIDR range when `prefixLength` is set. */
export interface ServiceAddress extends NetworkAddress {
  prefixLength?: number;
}

export interface NamespacedHostname {
  namespace: string;
  hostname: string;
}

/** Where a waypoint or network gateway is reached. */
export type GatewayDestination =
  | ({ kind: 'address' } & NetworkAddress)
  | ({ kind: 'hostname' } & NamespacedHostname);

export interface GatewayAddress {
  destination: GatewayDestination;
  /** HBONE port of the gateway, normally 15008. */
  hboneMtlsPort: number;
}

export type AppProtocol = 'UNKNOWN' | 'HTTP11' | 'HTTP2' | 'GRPC' | 'TCP' | 'TLS';

export interface Port {
  servicePort: number;
  /** 0 means "use the endpoint's own port mapping". */
  targetPort: number;
  appProtocol: AppProtocol;
}

/** `LEGACY_ISTIO_MTLS` exists on the wire but ztunnel rejects it; decoders report it as a problem. */
export type TunnelProtocol = 'NONE' | 'HBONE';
export type WorkloadStatus = 'HEALTHY' | 'UNHEALTHY';
export type WorkloadType = 'DEPLOYMENT' | 'CRONJOB' | 'POD' | 'JOB';
export type NetworkMode = 'STANDARD' | 'HOST_NETWORK';

export interface Locality {
  region: string;
  zone: string;
  subzone: string;
}

export interface ApplicationTunnel {
  protocol: 'NONE' | 'PROXY';
  /** Absent when the wire value is 0. */
  port?: number;
}

export interface Workload {
  /** Resource name: the workload's uid, e.g. `Kubernetes//Pod/default/sleep-1`. */
  uid: string;
  name: string;
  namespace: string;
  addresses: IpAddress[];
  /** Set for workloads reached by DNS name instead of IP. */
  hostname: string;
  network: string;
  tunnelProtocol: TunnelProtocol;
  /** `cluster.local` when empty on the wire (xDS only; the local file applies no default). */
  trustDomain: string;
  /** `default` when empty on the wire (xDS only). */
  serviceAccount: string;
  waypoint?: GatewayAddress;
  networkGateway?: GatewayAddress;
  node: string;
  canonicalName: string;
  canonicalRevision: string;
  workloadType: WorkloadType;
  workloadName: string;
  nativeTunnel: boolean;
  /** Keys `namespace/name` of WORKLOAD_SELECTOR policies applying to this workload. */
  authorizationPolicies: string[];
  status: WorkloadStatus;
  /** `Kubernetes` when empty on the wire (xDS only). */
  clusterId: string;
  /** Keyed by `namespace/hostname` of the service. */
  services: Record<string, Port[]>;
  applicationTunnel?: ApplicationTunnel;
  locality?: Locality;
  networkMode: NetworkMode;
  /** Load-balancing weight; 1 when absent. */
  capacity: number;
}

export type LoadBalancingScope = 'REGION' | 'ZONE' | 'SUBZONE' | 'NODE' | 'CLUSTER' | 'NETWORK';
export type LoadBalancingMode = 'UNSPECIFIED_MODE' | 'STRICT' | 'FAILOVER' | 'PASSTHROUGH';
export type HealthPolicy = 'ONLY_HEALTHY' | 'ALLOW_ALL';

export interface LoadBalancing {
  routingPreference: LoadBalancingScope[];
  mode: LoadBalancingMode;
  healthPolicy: HealthPolicy;
}

export type IpFamilies = 'AUTOMATIC' | 'IPV4_ONLY' | 'IPV6_ONLY' | 'DUAL';

export interface WeightedWaypoint {
  destination: GatewayAddress;
  weight: number;
}

export interface Service {
  name: string;
  namespace: string;
  hostname: string;
  addresses: ServiceAddress[];
  ports: Port[];
  /** SPIFFE IDs the service's endpoints may present, in addition to each workload's own. */
  subjectAltNames: string[];
  waypoint?: GatewayAddress;
  loadBalancing?: LoadBalancing;
  ipFamilies: IpFamilies;
  canonical: boolean;
  ingressUseWaypoint: boolean;
  weightedWaypoints: WeightedWaypoint[];
  visibility: 'PUBLIC' | 'NAMESPACE';
}

/** One `istio.workload.Address` resource. */
export type Address =
  | { kind: 'workload'; workload: Workload }
  | { kind: 'service'; service: Service };
