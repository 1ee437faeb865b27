import { EventEmitter } from 'node:events';
import { isIP } from 'node:net';
import type { Authorization } from '@mesh/l4-rbac';
import type { Address, GatewayAddress, Service, Workload } from '@mesh/xds-client';
import type { LocalConfig } from '../config/local-config.js';
import { cidrContains } from './cidr.js';

/** Where a resource came from; both sources may feed one store at the same time. */
export type StateSource = 'local' | 'xds';

export interface StoreEvents {
  /** Workloads or services changed. */
  addresses: [];
  /** Authorization policies changed. */
  policies: [];
}

export interface Endpoint {
  workload: Workload;
  /** Port to dial on the workload (after service port → target port mapping). */
  targetPort: number;
}

interface SourceState {
  workloads: Map<string, Workload>;
  services: Map<string, Service>;
  policies: Map<string, Authorization>;
}

const emptySource = (): SourceState => ({
  workloads: new Map(),
  services: new Map(),
  policies: new Map(),
});

export const serviceKey = (s: { namespace: string; hostname: string }) =>
  `${s.namespace}/${s.hostname}`;
export const policyKey = (p: { namespace: string; name: string }) => `${p.namespace}/${p.name}`;
const ipKey = (network: string, ip: string) => `${network}/${normaliseIp(ip)}`;

/** IPv4-mapped IPv6 (`::ffff:1.2.3.4`, as Node reports dual-stack peers) becomes plain IPv4. */
export function normaliseIp(ip: string): string {
  const m = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(ip);
  return (m ? m[1]! : ip).toLowerCase();
}

/**
 * Workloads, services and policies from the local config file and/or xDS, merged (xDS wins on
 * a key clash) and indexed by network+IP, uid, service VIP and hostname.
 */
export class StateStore extends EventEmitter<StoreEvents> {
  readonly #sources: Record<StateSource, SourceState> = {
    local: emptySource(),
    xds: emptySource(),
  };
  #workloads = new Map<string, Workload>();
  #services = new Map<string, Service>();
  #policies = new Map<string, Authorization>();
  #byIp = new Map<string, Workload>();
  #byVip = new Map<string, Service>();
  #cidrVips: Service[] = [];
  #byHostname = new Map<string, Service[]>();
  #endpoints = new Map<string, Workload[]>();

  /** Replaces everything the local config file contributed. */
  replaceLocal(config: LocalConfig): void {
    const s = this.#sources.local;
    const policiesChanged = s.policies.size > 0 || config.policies.length > 0;
    s.workloads = new Map(config.workloads.map((w) => [w.uid, w]));
    s.services = new Map(config.services.map((x) => [serviceKey(x), x]));
    s.policies = new Map(config.policies.map((p) => [policyKey(p), p]));
    this.#reindex();
    this.emit('addresses');
    if (policiesChanged) this.emit('policies');
  }

  /** Applies one xDS `Address` resource (added or updated). */
  upsertAddress(address: Address, source: StateSource = 'xds'): void {
    const s = this.#sources[source];
    if (address.kind === 'workload') s.workloads.set(address.workload.uid, address.workload);
    else s.services.set(serviceKey(address.service), address.service);
    this.#reindex();
    this.emit('addresses');
  }

  /** Removes an xDS `Address` by resource name (workload uid or `namespace/hostname`). */
  removeAddress(name: string, source: StateSource = 'xds'): void {
    const s = this.#sources[source];
    if (s.workloads.delete(name) || s.services.delete(name)) {
      this.#reindex();
      this.emit('addresses');
    }
  }

  upsertPolicy(policy: Authorization, source: StateSource = 'xds'): void {
    this.#sources[source].policies.set(policyKey(policy), policy);
    this.#policies = merge(this.#sources.local.policies, this.#sources.xds.policies);
    this.emit('policies');
  }

  removePolicy(key: string, source: StateSource = 'xds'): void {
    if (this.#sources[source].policies.delete(key)) {
      this.#policies = merge(this.#sources.local.policies, this.#sources.xds.policies);
      this.emit('policies');
    }
  }

  #reindex(): void {
    const { local, xds } = this.#sources;
    this.#workloads = merge(local.workloads, xds.workloads);
    this.#services = merge(local.services, xds.services);
    this.#policies = merge(local.policies, xds.policies);
    this.#byIp = new Map();
    this.#endpoints = new Map();
    for (const w of this.#workloads.values()) {
      // Host-network workloads share the node's IP, so they are never found by IP.
      if (w.networkMode !== 'HOST_NETWORK') {
        for (const ip of w.addresses) this.#byIp.set(ipKey(w.network, ip), w);
      }
      for (const key of Object.keys(w.services)) {
        const list = this.#endpoints.get(key) ?? [];
        list.push(w);
        this.#endpoints.set(key, list);
      }
    }
    this.#byVip = new Map();
    this.#cidrVips = [];
    this.#byHostname = new Map();
    for (const s of this.#services.values()) {
      for (const a of s.addresses) {
        const host = isIP(a.address) === 4 ? 32 : 128;
        if (a.prefixLength !== undefined && a.prefixLength !== host) this.#cidrVips.push(s);
        else this.#byVip.set(ipKey(a.network, a.address), s);
      }
      const list = this.#byHostname.get(s.hostname) ?? [];
      list.push(s);
      this.#byHostname.set(s.hostname, list);
    }
  }

  get workloads(): Workload[] {
    return [...this.#workloads.values()];
  }

  get services(): Service[] {
    return [...this.#services.values()];
  }

  get policies(): Authorization[] {
    return [...this.#policies.values()];
  }

  workloadByUid(uid: string): Workload | undefined {
    return this.#workloads.get(uid);
  }

  workloadByIp(network: string, ip: string): Workload | undefined {
    return this.#byIp.get(ipKey(network, ip));
  }

  /** The workload for `namespace/name/serviceaccount` (PROXY_WORKLOAD_INFO). */
  findWorkload(info: {
    namespace: string;
    name: string;
    serviceAccount: string;
  }): Workload | undefined {
    for (const w of this.#workloads.values()) {
      if (
        w.namespace === info.namespace &&
        w.name === info.name &&
        w.serviceAccount === info.serviceAccount
      ) {
        return w;
      }
    }
    return undefined;
  }

  serviceByKey(key: string): Service | undefined {
    return this.#services.get(key);
  }

  serviceByVip(network: string, ip: string): Service | undefined {
    const hit = this.#byVip.get(ipKey(network, ip));
    if (hit) return hit;
    const addr = normaliseIp(ip);
    return this.#cidrVips.find((s) =>
      s.addresses.some(
        (a) =>
          a.network === network &&
          a.prefixLength !== undefined &&
          cidrContains(a.address, a.prefixLength, addr),
      ),
    );
  }

  /** The service with this hostname, preferring one in `preferredNamespace`. */
  serviceByHostname(hostname: string, preferredNamespace?: string): Service | undefined {
    const list = this.#byHostname.get(hostname);
    if (!list || list.length === 0) return undefined;
    return list.find((s) => s.namespace === preferredNamespace) ?? list[0];
  }

  /** Workloads listing this service among theirs. */
  endpointsOf(service: Service): Workload[] {
    return this.#endpoints.get(serviceKey(service)) ?? [];
  }

  /**
   * The target port of `workload` for `servicePort` of `service`: the endpoint's own port map
   * first, then the service's; `undefined` when neither maps the port.
   */
  targetPort(service: Service, workload: Workload, servicePort: number): number | undefined {
    const own = workload.services[serviceKey(service)]?.find((p) => p.servicePort === servicePort);
    if (own && own.targetPort !== 0) return own.targetPort;
    const svc = service.ports.find((p) => p.servicePort === servicePort);
    if (svc && svc.targetPort !== 0) return svc.targetPort;
    return undefined;
  }

  /**
   * Picks an endpoint of `service` for `servicePort`: random, weighted by capacity, over healthy
   * endpoints (all endpoints when the service's health policy is ALLOW_ALL) that map the port.
   */
  pickEndpoint(
    service: Service,
    servicePort: number,
    random: () => number = Math.random,
  ): Endpoint | undefined {
    const allowAll = service.loadBalancing?.healthPolicy === 'ALLOW_ALL';
    const candidates: Endpoint[] = [];
    for (const workload of this.endpointsOf(service)) {
      if (!allowAll && workload.status !== 'HEALTHY') continue;
      if (workload.addresses.length === 0 && workload.hostname === '') continue;
      const targetPort = this.targetPort(service, workload, servicePort);
      if (targetPort !== undefined && workload.capacity > 0)
        candidates.push({ workload, targetPort });
    }
    const total = candidates.reduce((n, c) => n + c.workload.capacity, 0);
    if (total === 0) return undefined;
    let r = random() * total;
    for (const c of candidates) {
      r -= c.workload.capacity;
      if (r < 0) return c;
    }
    return candidates.at(-1);
  }

  /**
   * The policies that apply to connections to `workload`: NAMESPACE-scoped ones of its namespace,
   * GLOBAL ones, and those it lists in `authorizationPolicies` (unknown keys skipped).
   */
  policiesFor(workload: Workload): Authorization[] {
    const out: Authorization[] = [];
    for (const p of this.#policies.values()) {
      if (p.scope === 'GLOBAL' || (p.scope === 'NAMESPACE' && p.namespace === workload.namespace))
        out.push(p);
    }
    for (const key of workload.authorizationPolicies) {
      const p = this.#policies.get(key);
      if (p && !out.includes(p)) out.push(p);
    }
    return out;
  }

  /** Resolves a waypoint or gateway address to the workload that serves it. */
  resolveGateway(gw: GatewayAddress, random?: () => number): Endpoint | undefined {
    const d = gw.destination;
    if (d.kind === 'address') {
      const w = this.workloadByIp(d.network, d.address);
      if (w) return { workload: w, targetPort: gw.hboneMtlsPort };
      const svc = this.serviceByVip(d.network, d.address);
      if (!svc) return undefined;
      const ep = this.pickEndpoint(svc, gw.hboneMtlsPort, random);
      return ep && { workload: ep.workload, targetPort: gw.hboneMtlsPort };
    }
    const svc = this.serviceByKey(`${d.namespace}/${d.hostname}`);
    if (!svc) return undefined;
    const ep = this.pickEndpoint(svc, gw.hboneMtlsPort, random);
    return ep && { workload: ep.workload, targetPort: gw.hboneMtlsPort };
  }
}

function merge<V>(local: Map<string, V>, xds: Map<string, V>): Map<string, V> {
  const out = new Map(local);
  for (const [k, v] of xds) out.set(k, v);
  return out;
}
