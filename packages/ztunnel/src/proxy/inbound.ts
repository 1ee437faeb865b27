import {
  type ConnectDecision,
  type ConnectRequest,
  HboneServer,
  type ServerTunnel,
} from '@mesh/hbone';
import {
  forwardedHost,
  inboundHboneConnection,
  parseBaggage,
  type RecordedConnection,
  workloadBaggage,
} from '@mesh/metrics';
import { normaliseIp } from '../state/store.js';
import { ByteCounter } from './connections.js';
import { ownWorkload, type ProxyContext } from './context.js';
import { decideInbound } from './inbound-decision.js';
import { hostPort, labelService, labelWorkload } from './telemetry.js';
import { dialTcp, spoofSource } from './upstream.js';

interface TunnelContext {
  labels: ReturnType<typeof inboundHboneConnection>;
  authorize: {
    workloadUid: string;
    identity: ConnectRequest['peer']['identity'];
    sourceIp: string;
    destinationIp: string;
    destinationPort: number;
  };
  dst: string;
  record?: RecordedConnection;
  bytes?: ByteCounter;
}

/** Labels for a tunnel accepted on 15008, from the request and the destination workload. */
function labelsFor(ctx: ProxyContext, req: ConnectRequest, port: number) {
  const workload = ownWorkload(ctx)!;
  const td = ctx.config.trustDomain;
  const source = ctx.store.workloadByIp(ctx.config.network, req.remoteAddress);
  return inboundHboneConnection({
    peerIdentity: req.peer.identity.toString(),
    baggage: parseBaggage(req.headers.baggage),
    ...(source ? { source: labelWorkload(source, td) } : {}),
    ...(req.headers.xForwardedNetwork !== undefined
      ? { forwardedNetwork: req.headers.xForwardedNetwork }
      : {}),
    localNetwork: ctx.config.network,
    destination: labelWorkload(workload, td),
    destinationServices: Object.keys(workload.services)
      .map((k) => ctx.store.serviceByKey(k))
      .filter((s) => s !== undefined)
      .map(labelService),
    ...(forwardedHost(req.headers.forwarded)
      ? { forwardedHost: forwardedHost(req.headers.forwarded)! }
      : {}),
    port,
  });
}

/**
 * The inbound HBONE listener of one proxy instance: §2.4 checks, policy with the peer identity,
 * then the HBONE server dials the app. Every tunnel is recorded in metrics and tracked for late
 * policy re-checks and drain.
 */
export function createInboundServer(ctx: ProxyContext): HboneServer {
  const c = ctx.config;
  const server = new HboneServer({
    // Poll the source often enough to pick up rotations well before short-lived certificates expire.
    certificate: {
      source: ctx.certificates,
      identity: ctx.identity,
      refreshIntervalMs: Math.max(200, Math.min(5000, c.secretTtl / 10)),
    },
    streamWindowSize: c.http2StreamWindowSize,
    connectionWindowSize: c.http2ConnectionWindowSize,
    maxFrameSize: c.http2FrameSize,
    onConnect: (req): ConnectDecision => {
      const d = decideInbound(
        {
          store: ctx.store,
          workloadUid: ctx.workloadUid,
          authorize: ctx.authorize,
          isOwnListener: ctx.isOwnListener,
        },
        {
          authority: req.authority,
          localAddress: req.localAddress,
          remoteAddress: req.remoteAddress,
          identity: req.peer.identity,
        },
      );
      if (d.type === 'refuse') {
        if (d.workload) {
          const record = ctx.traffic.open(labelsFor(ctx, req, req.authority.port), {
            src: hostPort(req.remoteAddress, req.remotePort),
            // As ztunnel: the app address once known (RBAC runs after it), else where we were reached.
            dst: d.upstream
              ? hostPort(d.upstream.host, d.upstream.port)
              : hostPort(req.localAddress, req.localPort),
            hboneAddr: req.rawAuthority,
          });
          record.close({ flag: d.status === 401 ? 'DENY' : 'CONNECT', error: new Error(d.reason) });
        } else {
          ctx.traffic.earlyDeny(
            hostPort(req.remoteAddress, req.remotePort),
            req.rawAuthority,
            'destination',
            new Error(d.reason),
          );
        }
        return { type: 'refuse', status: d.status, reason: d.reason };
      }
      const context: TunnelContext = {
        labels: labelsFor(ctx, req, d.port),
        authorize: {
          workloadUid: ctx.workloadUid,
          identity: req.peer.identity,
          sourceIp: req.remoteAddress,
          destinationIp: d.host,
          destinationPort: d.port,
        },
        dst: hostPort(d.host, d.port),
      };
      // The client is the TCP peer of the HBONE connection, as in ztunnel (not `Forwarded`).
      const originalSource = spoofSource(ctx.origSrc, normaliseIp(req.remoteAddress), d.host);
      return {
        type: 'dial',
        host: d.host,
        port: d.port,
        // With ENABLE_ORIG_SRC the app sees the client's own address (transparent socket).
        ...(originalSource
          ? {
              localAddress: originalSource,
              connect: (target, { signal }) =>
                dialTcp(c, target, {
                  signal,
                  transparent: true,
                  ...(target.localAddress ? { localAddress: target.localAddress } : {}),
                }),
            }
          : ctx.localAddress
            ? { localAddress: ctx.localAddress }
            : {}),
        baggage: workloadBaggage({
          ...labelWorkload(d.workload, c.trustDomain),
          workloadType: d.workload.workloadType,
        }),
        context,
      };
    },
  });

  server.on('tunnel-open', (tunnel: ServerTunnel) => {
    const tc = tunnel.context as TunnelContext;
    const record = ctx.traffic.open(tc.labels, {
      src: hostPort(tunnel.request.remoteAddress, tunnel.request.remotePort),
      dst: tc.dst,
      hboneAddr: tunnel.request.rawAuthority,
    });
    const bytes = new ByteCounter(record, () => ({
      request: tunnel.bytesReceived,
      response: tunnel.bytesSent,
    }));
    tc.record = record;
    tc.bytes = bytes;
    ctx.connections.add({
      authorize: tc.authorize,
      record,
      bytes,
      done: tunnel.closed,
      destroy: (reason) => {
        bytes.flush();
        record.close({ flag: 'DENY', error: reason });
        tunnel.destroy(reason);
      },
    });
  });
  server.on('tunnel-close', (tunnel, info) => {
    const { record, bytes } = tunnel.context as TunnelContext;
    if (!record || record.closed) return;
    bytes?.flush({ request: info.bytesReceived, response: info.bytesSent });
    record.close(info.error ? { flag: 'CONNECT', error: info.error } : {});
  });
  server.on('refused', (info) => {
    // Dial failures are refused after onConnect said "dial": record them as CONNECT failures.
    if (info.status === 503 && info.request && info.error) {
      ctx.logger.debug(
        { err: info.error, authority: info.request.rawAuthority },
        'upstream dial failed',
      );
    }
  });
  server.on('connection-error', (err, info) => {
    ctx.logger.debug({ err, remote: info.remoteAddress }, 'inbound HBONE connection failed');
  });
  return server;
}
