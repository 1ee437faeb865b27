import { isIP } from 'node:net';
import type { SpiffeId } from '@mesh/spiffe';
import type { Workload } from '@mesh/xds-client';
import { normaliseIp, type StateStore } from '../state/store.js';
import type { Authorize } from './authorize.js';

export interface InboundRequest {
  authority: { host: string; port: number };
  /** TCP local address: the address the client dialled (original destination). */
  localAddress: string;
  remoteAddress: string;
  identity: SpiffeId;
}

export interface InboundContext {
  store: StateStore;
  /** The workload this proxy instance serves; looked up again per request. */
  workloadUid: string;
  authorize: Authorize;
  isOwnListener(ip: string, port: number): boolean;
}

export type InboundDecision =
  | { type: 'dial'; host: string; port: number; workload: Workload; serviceKey?: string }
  | {
      type: 'refuse';
      status: 400 | 401 | 503;
      reason: string;
      workload?: Workload;
      /** The app address, when the refusal came after it was found (access-log `dst.addr`). */
      upstream?: { host: string; port: number };
    };

/**
 * ztunnel's checks for one HBONE CONNECT (spec §2.4), after the HBONE server has verified the
 * method and parsed `:authority`: destination workload (503), IP match (400), upstream and port
 * mapping (503), self-call (503), policy (401).
 */
export function decideInbound(ctx: InboundContext, req: InboundRequest): InboundDecision {
  const workload = ctx.store.workloadByUid(ctx.workloadUid);
  if (!workload)
    return {
      type: 'refuse',
      status: 503,
      reason: 'destination workload is not in the state store',
    };
  const localIp = normaliseIp(req.localAddress);
  let host: string;
  let port: number;
  let serviceKey: string | undefined;
  if (isIP(req.authority.host)) {
    const target = normaliseIp(req.authority.host);
    if (
      target !== localIp &&
      !workload.applicationTunnel &&
      !namesUsAsWaypoint(ctx.store, workload, target)
    ) {
      return {
        type: 'refuse',
        status: 400,
        reason: `ip mismatch: ${target} != ${localIp}`,
        workload,
      };
    }
    host = workload.addresses.includes(target) ? target : (workload.addresses[0] ?? target);
    port = req.authority.port;
  } else {
    const service = ctx.store.serviceByHostname(req.authority.host, workload.namespace);
    if (!service) {
      return {
        type: 'refuse',
        status: 503,
        reason: `unknown service ${req.authority.host}`,
        workload,
      };
    }
    const mapped = ctx.store.targetPort(service, workload, req.authority.port);
    if (mapped === undefined) {
      return {
        type: 'refuse',
        status: 503,
        reason: `service ${req.authority.host} has no target port for ${req.authority.port}`,
        workload,
      };
    }
    host = workload.addresses[0] ?? localIp;
    port = mapped;
    serviceKey = `${service.namespace}/${service.hostname}`;
  }
  if (workload.applicationTunnel?.port) port = workload.applicationTunnel.port;
  if (ctx.isOwnListener(host, port)) {
    return {
      type: 'refuse',
      status: 503,
      reason: 'attempted recursive call to ourselves',
      workload,
      upstream: { host, port },
    };
  }
  const verdict = ctx.authorize({
    workload,
    identity: req.identity,
    sourceIp: normaliseIp(req.remoteAddress),
    destinationIp: host,
    destinationPort: port,
  });
  if (!verdict.allowed) {
    return {
      type: 'refuse',
      status: 401,
      reason: `connection closed due to policy rejection: ${verdict.reason}`,
      workload,
      upstream: { host, port },
    };
  }
  return { type: 'dial', host, port, workload, ...(serviceKey ? { serviceKey } : {}) };
}

/** A "sandwich": the authority names a workload or service whose waypoint is this workload. */
function namesUsAsWaypoint(store: StateStore, us: Workload, ip: string): boolean {
  const viaUs = (gw: Workload['waypoint']) =>
    gw !== undefined && store.resolveGateway(gw)?.workload.uid === us.uid;
  const w = store.workloadByIp(us.network, ip);
  if (w && viaUs(w.waypoint)) return true;
  const s = store.serviceByVip(us.network, ip);
  return s !== undefined && viaUs(s.waypoint);
}
