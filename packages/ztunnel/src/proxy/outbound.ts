import { lookup } from 'node:dns/promises';
import { createServer, isIP, type Server, type Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import { type ClientTunnel, Splice } from '@mesh/hbone';
import { outboundConnection, type RecordedConnection, workloadBaggage } from '@mesh/metrics';
import { originalDestination } from '@mesh/redirect';
import { ZtunnelError } from '../errors.js';
import { normaliseIp } from '../state/store.js';
import { ByteCounter, type TrackedConnection } from './connections.js';
import { ownWorkload, type ProxyContext } from './context.js';
import { type Route, type RouteContext, resolveMeshHostname, routeOutbound } from './route.js';
import { readSocks5Request, SOCKS5_REPLY, writeSocks5Reply } from './socks5.js';
import { hostPort, labelService, labelWorkload } from './telemetry.js';
import { dialTcp } from './upstream.js';

function routeContext(ctx: ProxyContext): RouteContext | undefined {
  const source = ownWorkload(ctx);
  if (!source) return undefined;
  return {
    store: ctx.store,
    source,
    network: ctx.config.network,
    trustDomain: ctx.config.trustDomain,
    hbonePort: ctx.config.hbonePort,
    isOwnListener: ctx.isOwnListener,
  };
}

interface Opened {
  stream: Duplex;
  record: RecordedConnection;
  tunnel?: ClientTunnel;
}

/** Opens the upstream of `route` (HBONE tunnel or plain TCP) and starts its metrics record. */
async function openUpstream(
  ctx: ProxyContext,
  client: Socket,
  route: Exclude<Route, { kind: 'refuse' }>,
  signal: AbortSignal,
): Promise<Opened> {
  const source = ownWorkload(ctx);
  if (!source)
    throw new ZtunnelError(
      'ERR_ZTUNNEL_WORKLOAD_UNKNOWN',
      'the source workload left the state store',
    );
  const td = ctx.config.trustDomain;
  const labelsIn = {
    source: labelWorkload(source, td),
    sourceIdentity: ctx.identity.toString(),
    ...(route.destination ? { destination: labelWorkload(route.destination, td) } : {}),
    ...(route.service ? { destinationService: labelService(route.service) } : {}),
  };
  const src = hostPort(client.remoteAddress, client.remotePort);
  if (route.kind === 'hbone') {
    const labels = outboundConnection({ ...labelsIn, protocol: 'hbone' });
    const addresses = {
      src,
      dst: hostPort(route.nextHop.host, route.nextHop.port),
      hboneAddr: hostPort(route.authority.host, route.authority.port),
    };
    try {
      const tunnel = await ctx.client.connect({
        authority: route.authority,
        via: route.nextHop,
        sourceIdentity: ctx.identity,
        expectedIdentities: route.expectedIdentities,
        baggage: workloadBaggage({
          ...labelWorkload(source, td),
          workloadType: source.workloadType,
        }),
        forwarded: {
          for: { address: normaliseIp(client.remoteAddress ?? ''), port: client.remotePort ?? 0 },
          ...(route.service ? { host: route.service.hostname } : {}),
        },
        signal,
      });
      return { stream: tunnel.stream, record: ctx.traffic.open(labels, addresses), tunnel };
    } catch (err) {
      ctx.traffic.open(labels, addresses).close({ flag: flagOf(err), error: err });
      throw err;
    }
  }
  const labels = outboundConnection({ ...labelsIn, protocol: 'tcp' });
  const addresses = { src, dst: hostPort(route.target.host, route.target.port) };
  try {
    const socket = await dialTcp(ctx.config, route.target, {
      signal,
      ...(ctx.localAddress ? { localAddress: ctx.localAddress } : {}),
    });
    return { stream: socket, record: ctx.traffic.open(labels, addresses) };
  } catch (err) {
    ctx.traffic.open(labels, addresses).close({ flag: 'CONNECT', error: err });
    throw err;
  }
}

function flagOf(err: unknown): 'CONNECT' | 'TLS_FAILURE' | 'NETWORK_POLICY' | 'IDENTITY_ERROR' {
  const code = (err as { code?: string }).code ?? '';
  if (code.includes('TLS') || code.includes('HANDSHAKE')) return 'TLS_FAILURE';
  if (code.includes('IDENTITY')) return 'IDENTITY_ERROR';
  if (code.includes('TIMEOUT')) return 'NETWORK_POLICY';
  return 'CONNECT';
}

/**
 * Copies bytes until both sides close; records bytes (also while it runs, through `tracked`)
 * and the outcome.
 */
function splice(client: Socket, opened: Opened, tracked: TrackedConnection): Splice {
  // a = client (request direction), b = upstream.
  const s = new Splice(client, opened.stream);
  const bytes = new ByteCounter(opened.record, () => ({
    request: s.bytesAtoB,
    response: s.bytesBtoA,
  }));
  tracked.record = opened.record;
  tracked.bytes = bytes;
  s.done.then((r) => {
    bytes.flush({ request: r.bytesAtoB, response: r.bytesBtoA });
    opened.record.close(r.error ? { flag: 'CONNECT', error: r.error } : {});
  });
  return s;
}

/** Routes and forwards one client connection whose destination is `ip:port`. */
export async function forward(
  ctx: ProxyContext,
  client: Socket,
  route: Route | undefined,
  onReady?: (ok: boolean, reply: number) => void,
): Promise<void> {
  const signal = AbortSignal.timeout(30_000);
  if (!route || route.kind === 'refuse') {
    const reason = route?.reason ?? 'the served workload is not in the state store';
    ctx.traffic.earlyDeny(
      hostPort(client.remoteAddress, client.remotePort),
      'unknown',
      'source',
      new Error(reason),
    );
    if (onReady)
      onReady(
        false,
        route?.code === 'ERR_ZTUNNEL_SELF_CALL'
          ? SOCKS5_REPLY.notAllowed
          : SOCKS5_REPLY.hostUnreachable,
      );
    else client.destroy();
    return;
  }
  client.on('error', () => {});
  // Tracked from accept, not from when the upstream is open: a drain must also wait for
  // connections whose tunnel is still being set up.
  const cancel = new AbortController();
  let spliced: Splice | undefined;
  let settle!: () => void;
  const tracked = ctx.connections.add({
    done: new Promise<void>((r) => {
      settle = r;
    }),
    destroy: (reason) => {
      cancel.abort(reason);
      if (spliced) spliced.destroy(reason);
      else client.destroy();
    },
  });
  try {
    const opened = await openUpstream(ctx, client, route, AbortSignal.any([signal, cancel.signal]));
    if (client.destroyed) {
      opened.stream.destroy();
      opened.record.close({ flag: 'CONNECT', error: new Error('client went away') });
      settle();
      return;
    }
    onReady?.(true, SOCKS5_REPLY.succeeded);
    client.resume();
    spliced = splice(client, opened, tracked);
    spliced.done.then(settle, settle);
  } catch (err) {
    ctx.logger.debug({ err }, 'outbound connection failed');
    if (onReady) onReady(false, SOCKS5_REPLY.connectionRefused);
    else client.destroy();
    settle();
  }
}

/**
 * The outbound capture listener (15001): recovers the original destination with
 * SO_ORIGINAL_DST (the local address when the connection was not redirected, which is then a
 * refused self-call) and forwards.
 */
export function createOutboundServer(ctx: ProxyContext): Server {
  return createServer({ noDelay: true, pauseOnConnect: true, allowHalfOpen: true }, (client) => {
    let dst: { address: string; port: number };
    try {
      dst = originalDestination(client);
    } catch {
      dst = { address: client.localAddress ?? '', port: client.localPort ?? 0 };
    }
    const rc = routeContext(ctx);
    void forward(ctx, client, rc && routeOutbound(rc, dst.address, dst.port));
  });
}

/** SOCKS5 (15080): no-auth CONNECT; host names resolve to mesh services first, then DNS. */
export function createSocks5Server(ctx: ProxyContext): Server {
  return createServer({ noDelay: true, allowHalfOpen: true }, (client) => {
    client.on('error', () => {});
    void (async () => {
      let req: Awaited<ReturnType<typeof readSocks5Request>>;
      try {
        req = await readSocks5Request(client);
      } catch (err) {
        ctx.logger.debug({ err, remote: client.remoteAddress }, 'SOCKS5 handshake failed');
        client.destroy();
        return;
      }
      const rc = routeContext(ctx);
      let route: Route | undefined;
      if (rc && req.kind === 'domain') {
        route = resolveMeshHostname(rc, req.host, req.port);
        if (!route) {
          try {
            const { address } = await lookup(req.host);
            route = routeOutbound(rc, address, req.port);
          } catch (err) {
            ctx.logger.debug({ err, host: req.host }, 'SOCKS5 host name does not resolve');
            writeSocks5Reply(client, SOCKS5_REPLY.hostUnreachable);
            return;
          }
        }
      } else if (rc && isIP(req.host)) {
        route = routeOutbound(rc, req.host, req.port);
      }
      await forward(ctx, client, route, (ok, reply) => {
        if (!client.destroyed) writeSocks5Reply(client, ok ? SOCKS5_REPLY.succeeded : reply);
      });
    })();
  });
}
