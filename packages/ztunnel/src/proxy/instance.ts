import { type AddressInfo, createServer, type Server, type Socket } from 'node:net';
import { HboneClient, type HboneServer } from '@mesh/hbone';
import { listen } from '../admin/listen.js';
import type { BindAddress } from '../config/values.js';
import { normaliseIp } from '../state/store.js';
import { ConnectionTracker } from './connections.js';
import type { ProxyContext } from './context.js';
import { createInboundServer } from './inbound.js';
import { createInboundPlaintextServer } from './inbound-plaintext.js';
import { createOutboundServer, createSocks5Server } from './outbound.js';
import { dialTcp, resolveOrigSrc } from './upstream.js';

/** What a proxy instance is built from: its context minus what the instance creates itself. */
export type ProxyInstanceOptions = Omit<
  ProxyContext,
  'client' | 'connections' | 'isOwnListener' | 'localAddress' | 'origSrc'
>;

export interface ProxyAddresses {
  inbound: AddressInfo;
  inboundPlaintext: AddressInfo;
  outbound: AddressInfo;
  socks5?: AddressInfo;
}

/**
 * The listeners, HBONE pool and connection tracking of one served workload. Dedicated mode runs
 * one; shared (in-pod) mode would run one per pod, each inside its pod's network namespace.
 */
export class ProxyInstance {
  readonly context: ProxyContext;
  /** Created once the workload certificate is available ({@link enableInbound}). */
  inbound: HboneServer | undefined;
  readonly #hboneListener: Server;
  /** Connections accepted on 15008 before the certificate arrived; served once it does. */
  #early: Socket[] = [];
  readonly #plain: Server;
  readonly #outbound: Server;
  readonly #socks5: Server | undefined;
  readonly #own: { host: string; port: number }[] = [];
  addresses = {} as ProxyAddresses;

  constructor(o: ProxyInstanceOptions) {
    const c = o.config;
    const workload = o.store.workloadByUid(o.workloadUid);
    // Listeners bound to the workload's own IP (one ztunnel per workload on one host): connect
    // from that IP too, so peers can identify the source workload by address.
    const localAddress = workload?.addresses.includes(normaliseIp(c.outboundAddress.host))
      ? normaliseIp(c.outboundAddress.host)
      : undefined;
    const client = new HboneClient({
      ...(localAddress ? { localAddress } : {}),
      certificates: o.certificates,
      maxStreamsPerConnection: c.poolMaxStreamsPerConnection,
      idleTimeoutMs: c.poolUnusedReleaseTimeout,
      streamWindowSize: c.http2StreamWindowSize,
      connectionWindowSize: c.http2ConnectionWindowSize,
      maxFrameSize: c.http2FrameSize,
      ...(c.packetMark !== undefined
        ? { createSocket: ({ host, port, signal }) => dialTcp(c, { host, port }, { signal }) }
        : {}),
    });
    this.context = {
      config: c,
      store: o.store,
      workloadUid: o.workloadUid,
      identity: o.identity,
      certificates: o.certificates,
      authorize: o.authorize,
      traffic: o.traffic,
      client,
      connections: new ConnectionTracker(),
      ...(localAddress ? { localAddress } : {}),
      origSrc: resolveOrigSrc(c),
      logger: o.logger,
      isOwnListener: (ip, port) => this.#isOwn(ip, port),
    };
    this.#hboneListener = createServer((socket) => {
      if (this.inbound) {
        this.inbound.accept(socket);
        return;
      }
      socket.on('error', () => {});
      socket.setTimeout(10_000, () => socket.destroy());
      this.#early.push(socket);
      socket.once('close', () => {
        this.#early = this.#early.filter((s) => s !== socket);
      });
    });
    this.#plain = createInboundPlaintextServer(this.context);
    this.#outbound = createOutboundServer(this.context);
    this.#socks5 = c.enableSocks5 ? createSocks5Server(this.context) : undefined;
  }

  /** A connection to one of our own listener ports on a local address would loop forever. */
  #isOwn(ip: string, port: number): boolean {
    const addr = normaliseIp(ip);
    const local = addr.startsWith('127.') || addr === '::1' || addr === '0.0.0.0' || addr === '::';
    const ours =
      this.context.store.workloadByUid(this.context.workloadUid)?.addresses.includes(addr) ?? false;
    return this.#own.some((l) => l.port === port && (local || ours || l.host === addr));
  }

  async start(): Promise<ProxyAddresses> {
    const c = this.context.config;
    const bind = async (server: Server, address: BindAddress, what: string) => {
      const info = await listen(server, address, what);
      this.#own.push({ host: normaliseIp(info.address), port: info.port });
      return info;
    };
    try {
      this.addresses = {
        inbound: await bind(this.#hboneListener, c.inboundAddress, 'inbound HBONE listener'),
        inboundPlaintext: await bind(
          this.#plain,
          c.inboundPlaintextAddress,
          'inbound plaintext listener',
        ),
        outbound: await bind(this.#outbound, c.outboundAddress, 'outbound listener'),
        ...(this.#socks5
          ? { socks5: await bind(this.#socks5, c.socks5Address, 'SOCKS5 listener') }
          : {}),
      };
    } catch (err) {
      this.destroy();
      throw err;
    }
    return this.addresses;
  }

  /**
   * Starts serving HBONE on the bound 15008 listener; call once the workload certificate can be
   * fetched. Connections that arrived earlier are served now.
   */
  enableInbound(): void {
    if (this.inbound) return;
    this.inbound = createInboundServer(this.context);
    for (const socket of this.#early.splice(0)) {
      socket.setTimeout(0);
      this.inbound.accept(socket);
    }
  }

  /** Re-checks every live inbound connection against current policy; closes those now denied. */
  recheckPolicies(): number {
    let closed = 0;
    for (const conn of this.context.connections.inbound()) {
      const workload = this.context.store.workloadByUid(conn.authorize.workloadUid);
      const verdict = workload
        ? this.context.authorize({ ...conn.authorize, workload })
        : { allowed: false, reason: 'destination workload removed' };
      if (!verdict.allowed) {
        conn.destroy(new Error(`connection closed due to policy change: ${verdict.reason}`));
        closed++;
      }
    }
    return closed;
  }

  /**
   * Stops accepting, sends GOAWAY on HBONE connections, lets open tunnels and connections run
   * until `deadlineMs`, then closes what is left.
   */
  async close(deadlineMs: number): Promise<void> {
    for (const s of [this.#hboneListener, this.#plain, this.#outbound, this.#socks5]) s?.close();
    for (const s of this.#early.splice(0)) s.destroy();
    const hbone = this.inbound?.close({ graceMs: deadlineMs });
    const left = await this.context.connections.drain(deadlineMs);
    if (left > 0)
      this.context.logger.warn(
        { connections: left },
        'closed connections still open at the termination deadline',
      );
    await hbone;
    await this.context.client.close();
  }

  destroy(): void {
    for (const s of [this.#hboneListener, this.#plain, this.#outbound, this.#socks5]) s?.close();
    for (const s of this.#early.splice(0)) s.destroy();
    this.inbound?.destroy();
    this.context.connections.destroyAll(new Error('proxy destroyed'));
    this.context.client.destroy();
  }
}
