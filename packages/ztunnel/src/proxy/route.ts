import { isIP } from 'node:net';
import { IstioIdentity, type SpiffeId } from '@mesh/spiffe';
import type { GatewayAddress, Service, Workload } from '@mesh/xds-client';
import { workloadIdentity } from '../state/identity.js';
import { normaliseIp, type StateStore } from '../state/store.js';

/** Where an outbound connection goes. */
export type Route =
  | {
      kind: 'hbone';
      /** The next hop's HBONE listener (destination pod, waypoint or gateway). */
      nextHop: { host: string; port: number };
      /** `:authority` of the CONNECT: pod IP + target port, or the original address via a waypoint. */
      authority: { host: string; port: number };
      /** Identities the next hop's certificate may carry. */
      expectedIdentities: SpiffeId[];
      /** The workload actually connected to (the waypoint when going through one). */
      destination: Workload;
      /** The service the client addressed, if any. */
      service?: Service;
      viaWaypoint: boolean;
    }
  | {
      kind: 'passthrough';
      target: { host: string; port: number };
      /** Set when the target is a known (non-HBONE) workload. */
      destination?: Workload;
      service?: Service;
    }
  | { kind: 'refuse'; reason: string; code: 'ERR_ZTUNNEL_NO_ROUTE' | 'ERR_ZTUNNEL_SELF_CALL' };

export interface RouteContext {
  store: StateStore;
  /** The workload the connection comes from. */
  source: Workload;
  network: string;
  trustDomain: string;
  /** Port peers' inbound HBONE listeners are reached on (15008). */
  hbonePort: number;
  /** Whether `ip:port` is one of this proxy's own listeners (self-call protection). */
  isOwnListener(ip: string, port: number): boolean;
  random?: () => number;
}

function expected(ctx: RouteContext, w: Workload, service?: Service): SpiffeId[] {
  const ids: SpiffeId[] = [];
  for (const san of service?.subjectAltNames ?? []) {
    const id = IstioIdentity.tryParse(san);
    if (id) ids.push(id);
  }
  const own = workloadIdentity(w, ctx.trustDomain);
  if (!ids.some((i) => i.equals(own))) ids.push(own);
  return ids;
}

function viaGateway(
  ctx: RouteContext,
  gw: GatewayAddress,
  original: { host: string; port: number },
  service: Service | undefined,
): Route {
  const ep = ctx.store.resolveGateway(gw, ctx.random);
  if (!ep) {
    const d = gw.destination;
    const name =
      d.kind === 'address' ? `${d.network}/${d.address}` : `${d.namespace}/${d.hostname}`;
    return {
      kind: 'refuse',
      code: 'ERR_ZTUNNEL_NO_ROUTE',
      reason: `waypoint ${name} is not in the state store`,
    };
  }
  const host = ep.workload.addresses[0] ?? ep.workload.hostname;
  return {
    kind: 'hbone',
    nextHop: { host, port: gw.hboneMtlsPort || ctx.hbonePort },
    authority: original,
    expectedIdentities: expected(ctx, ep.workload),
    destination: ep.workload,
    ...(service ? { service } : {}),
    viaWaypoint: true,
  };
}

/** Whether `w` is itself the waypoint (avoids sending a waypoint's own traffic back to it). */
function isSelf(ctx: RouteContext, w: Workload): boolean {
  return w.uid === ctx.source.uid;
}

function toWorkload(
  ctx: RouteContext,
  w: Workload,
  port: number,
  service?: Service,
  viaPort = port,
): Route {
  if (w.waypoint && !isSelf(ctx, w)) {
    const wp = ctx.store.resolveGateway(w.waypoint, ctx.random);
    if (!wp || !isSelf(ctx, wp.workload)) {
      return viaGateway(
        ctx,
        w.waypoint,
        { host: w.addresses[0] ?? w.hostname, port: viaPort },
        service,
      );
    }
  }
  const host = w.addresses[0] ?? w.hostname;
  if (w.tunnelProtocol === 'HBONE') {
    return {
      kind: 'hbone',
      nextHop: { host, port: ctx.hbonePort },
      authority: { host, port },
      expectedIdentities: expected(ctx, w, service),
      destination: w,
      ...(service ? { service } : {}),
      viaWaypoint: false,
    };
  }
  return {
    kind: 'passthrough',
    target: { host, port },
    destination: w,
    ...(service ? { service } : {}),
  };
}

/** A load-balanced endpoint of `service` for `port`, or a refusal when none is healthy. */
function toEndpoint(ctx: RouteContext, service: Service, port: number): Route {
  const ep = ctx.store.pickEndpoint(service, port, ctx.random);
  if (!ep) {
    return {
      kind: 'refuse',
      code: 'ERR_ZTUNNEL_NO_ROUTE',
      reason: `no healthy upstream for ${service.namespace}/${service.hostname} port ${port}`,
    };
  }
  return toWorkload(ctx, ep.workload, ep.targetPort, service, port);
}

/**
 * Routes an outbound connection to `ip:port` the way ztunnel's outbound proxy does: a service
 * VIP goes to the service's waypoint or a load-balanced endpoint (port mapped); a mesh workload
 * goes to its waypoint or its HBONE listener; anything else passes through as plain TCP.
 */
export function routeOutbound(ctx: RouteContext, ip: string, port: number): Route {
  const addr = normaliseIp(ip);
  if (ctx.isOwnListener(addr, port)) {
    return {
      kind: 'refuse',
      code: 'ERR_ZTUNNEL_SELF_CALL',
      reason: `attempted recursive call to ourselves (${addr}:${port})`,
    };
  }
  const service = ctx.store.serviceByVip(ctx.network, addr);
  if (service) {
    if (service.waypoint) {
      const wp = ctx.store.resolveGateway(service.waypoint, ctx.random);
      if (!wp || !isSelf(ctx, wp.workload))
        return viaGateway(ctx, service.waypoint, { host: addr, port }, service);
    }
    return toEndpoint(ctx, service, port);
  }
  const workload = ctx.store.workloadByIp(ctx.network, addr);
  if (workload) return toWorkload(ctx, workload, port);
  return { kind: 'passthrough', target: { host: addr, port } };
}

/**
 * A host name from SOCKS5: a mesh service's VIP when one matches the hostname (same IP family
 * preferred), a headless service's endpoint, or `undefined` to fall back to DNS.
 */
export function resolveMeshHostname(
  ctx: RouteContext,
  hostname: string,
  port: number,
): Route | undefined {
  const service = ctx.store.serviceByHostname(hostname, ctx.source.namespace);
  if (!service) return undefined;
  const vip = service.addresses.find(
    (a) => a.network === ctx.network && a.prefixLength === undefined && isIP(a.address),
  );
  if (vip) return routeOutbound(ctx, vip.address, port);
  return toEndpoint(ctx, service, port);
}
