import { createServer, type Server } from 'node:net';
import { Splice } from '@mesh/hbone';
import { inboundPlaintextConnection } from '@mesh/metrics';
import { originalDestination } from '@mesh/redirect';
import { normaliseIp } from '../state/store.js';
import { ByteCounter, type TrackedConnection } from './connections.js';
import { ownWorkload, type ProxyContext } from './context.js';
import { hostPort, labelService, labelWorkload } from './telemetry.js';
import { dialTcp, spoofSource } from './upstream.js';

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
    // Tracked from accept, not once the app answered: a drain must also wait for a connection
    // whose dial is still in progress, and its deadline (or a policy change) aborts that dial.
    const cancel = new AbortController();
    let spliced: Splice | undefined;
    let settle!: () => void;
    const tracked: TrackedConnection = ctx.connections.add({
      authorize,
      record,
      done: new Promise<void>((r) => {
        settle = r;
      }),
      destroy: (reason) => {
        cancel.abort(reason);
        tracked.bytes?.flush();
        if (!record.closed) record.close({ flag: 'DENY', error: reason });
        if (spliced) spliced.destroy(reason);
        else client.destroy();
      },
    });
    const originalSource = spoofSource(ctx.origSrc, authorize.sourceIp, dstIp);
    dialTcp(
      ctx.config,
      { host: dstIp, port: dst.port },
      {
        signal: cancel.signal,
        ...(originalSource
          ? { transparent: true, localAddress: originalSource }
          : ctx.localAddress
            ? { localAddress: ctx.localAddress }
            : {}),
      },
    ).then(
      (upstream) => {
        if (client.destroyed) {
          upstream.destroy();
          if (!record.closed)
            record.close({ flag: 'CONNECT', error: new Error('client went away') });
          settle();
          return;
        }
        client.resume();
        const sp = new Splice(client, upstream);
        spliced = sp;
        const bytes = new ByteCounter(record, () => ({
          request: sp.bytesAtoB,
          response: sp.bytesBtoA,
        }));
        tracked.bytes = bytes;
        sp.done.then((r) => {
          bytes.flush({ request: r.bytesAtoB, response: r.bytesBtoA });
          if (!record.closed) record.close(r.error ? { flag: 'CONNECT', error: r.error } : {});
          settle();
        });
      },
      (err: Error) => {
        if (!record.closed) record.close({ flag: 'CONNECT', error: err });
        client.destroy();
        settle();
      },
    );
  });
}
