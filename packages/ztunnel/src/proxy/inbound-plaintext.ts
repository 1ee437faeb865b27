import { createServer, type Server } from 'node:net';
import { Splice } from '@mesh/hbone';
import { inboundPlaintextConnection } from '@mesh/metrics';
import { originalDestination } from '@mesh/redirect';
import { normaliseIp } from '../state/store.js';
import { ownWorkload, type ProxyContext } from './context.js';
import { hostPort, labelService, labelWorkload } from './telemetry.js';
import { dialTcp } from './upstream.js';

/**
 * The inbound plaintext listener (15006): captured non-HBONE traffic to the served workload.
 * Policy runs without a peer identity, so a STRICT policy (`notPrincipals: [presence]` DENY)
 * refuses it; allowed connections go on to the original destination.
 */
export function createInboundPlaintextServer(ctx: ProxyContext): Server {
  return createServer({ noDelay: true, pauseOnConnect: true, allowHalfOpen: true }, (client) => {
    client.on('error', () => {});
    const workload = ownWorkload(ctx);
    const src = hostPort(client.remoteAddress, client.remotePort);
    if (!workload) {
      ctx.traffic.earlyDeny(
        src,
        'unknown',
        'destination',
        new Error('destination workload is not in the state store'),
      );
      client.destroy();
      return;
    }
    let dst: { address: string; port: number };
    try {
      dst = originalDestination(client);
    } catch {
      dst = { address: client.localAddress ?? '', port: client.localPort ?? 0 };
    }
    const dstIp = normaliseIp(dst.address);
    const td = ctx.config.trustDomain;
    const source = ctx.store.workloadByIp(ctx.config.network, client.remoteAddress ?? '');
    const labels = inboundPlaintextConnection({
      ...(source ? { source: labelWorkload(source, td) } : {}),
      destination: labelWorkload(workload, td),
      destinationServices: Object.keys(workload.services)
        .map((k) => ctx.store.serviceByKey(k))
        .filter((s) => s !== undefined)
        .map(labelService),
      port: dst.port,
    });
    const record = ctx.traffic.open(labels, { src, dst: hostPort(dstIp, dst.port) });
    const authorize = {
      workloadUid: ctx.workloadUid,
      sourceIp: normaliseIp(client.remoteAddress ?? ''),
      destinationIp: dstIp,
      destinationPort: dst.port,
    };
    const verdict = ctx.authorize({ ...authorize, workload });
    if (!verdict.allowed) {
      record.close({
        flag: 'DENY',
        error: new Error(`connection closed due to policy rejection: ${verdict.reason}`),
      });
      client.destroy();
      return;
    }
    if (ctx.isOwnListener(dstIp, dst.port)) {
      record.close({ flag: 'CONNECT', error: new Error('attempted recursive call to ourselves') });
      client.destroy();
      return;
    }
    dialTcp(
      ctx.config,
      { host: dstIp, port: dst.port },
      ctx.config.enableOrigSrc
        ? { transparent: true, localAddress: authorize.sourceIp }
        : ctx.localAddress
          ? { localAddress: ctx.localAddress }
          : {},
    ).then(
      (upstream) => {
        client.resume();
        const s = new Splice(client, upstream);
        ctx.connections.add({
          authorize,
          record,
          done: s.done,
          destroy: (reason) => {
            record.close({ flag: 'DENY', error: reason });
            s.destroy(reason);
          },
        });
        s.done.then((r) => {
          if (record.closed) return;
          record.addRequestBytes(r.bytesAtoB);
          record.addResponseBytes(r.bytesBtoA);
          record.close(r.error ? { flag: 'CONNECT', error: r.error } : {});
        });
      },
      (err: Error) => {
        record.close({ flag: 'CONNECT', error: err });
        client.destroy();
      },
    );
  });
}
