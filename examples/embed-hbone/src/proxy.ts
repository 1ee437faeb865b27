// A TCP proxy for your own process: each route listens on a local port and carries every
// connection it accepts to one mesh destination inside an HBONE tunnel (HTTP/2 CONNECT over
// mutual TLS 1.3), on connections pooled by HboneClient.
import { EventEmitter } from 'node:events';
import { type AddressInfo, createServer, type Server, type Socket } from 'node:net';
import { HboneClient, HboneError } from '@mesh/hbone';
import type { CertificateSource, SpiffeId } from '@mesh/spiffe';

export interface Route {
  /** Local listener; port 0 picks a free one. */
  listen: { host: string; port: number };
  /** What the tunnel's `:authority` names: the destination workload's `ip:port`. */
  authority: string;
  /** The HBONE server to go through: the destination's ztunnel (port 15008) or a waypoint. */
  via: { host: string; port?: number };
  /** SPIFFE IDs the server may present (the destination's identity). */
  expectedIdentities: readonly (SpiffeId | string)[];
}

export interface ProxyEvents {
  'tunnel-open': [{ route: Route; client: string; traceparent: string; peer: string }];
  'tunnel-close': [{ route: Route; client: string; up: number; down: number; error?: Error }];
  'tunnel-failed': [{ route: Route; client: string; error: Error }];
}

export class MeshTcpProxy extends EventEmitter<ProxyEvents> {
  readonly #hbone: HboneClient;
  readonly #identity: SpiffeId;
  readonly #servers: Server[] = [];
  readonly #sockets = new Set<Socket>();

  constructor(options: { identity: SpiffeId; certificates: CertificateSource }) {
    super();
    this.#identity = options.identity;
    this.#hbone = new HboneClient({ certificates: options.certificates });
  }

  /** Start listening for a route; resolves with the bound address. */
  async add(route: Route): Promise<AddressInfo> {
    const server = createServer({ allowHalfOpen: true, noDelay: true }, (socket) =>
      this.#forward(route, socket),
    );
    this.#servers.push(server);
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(route.listen.port, route.listen.host, () => resolve());
    });
    return server.address() as AddressInfo;
  }

  get stats() {
    return this.#hbone.stats;
  }

  async #forward(route: Route, socket: Socket): Promise<void> {
    const client = `${socket.remoteAddress}:${socket.remotePort}`;
    this.#sockets.add(socket);
    socket.once('close', () => this.#sockets.delete(socket));
    socket.on('error', () => {}); // the splice below reports how the connection ended
    // Stop dialling when the client gives up first.
    const abort = new AbortController();
    socket.once('close', () => abort.abort());
    try {
      const tunnel = await this.#hbone.connect({
        authority: route.authority,
        via: route.via,
        sourceIdentity: this.#identity,
        expectedIdentities: route.expectedIdentities,
        // Tells the destination who the real client is (ztunnel sends the same header).
        forwarded: { for: { address: socket.remoteAddress ?? '', port: socket.remotePort ?? 0 } },
        signal: abort.signal,
      });
      this.emit('tunnel-open', {
        route,
        client,
        traceparent: tunnel.traceparent,
        peer: tunnel.peerIdentity.toString(),
      });
      // Both directions, with backpressure and half-close: a FIN becomes END_STREAM.
      const { bytesAtoB, bytesBtoA, error } = await tunnel.pipe(socket).done;
      this.emit('tunnel-close', { route, client, up: bytesBtoA, down: bytesAtoB, error });
    } catch (err) {
      socket.destroy();
      const error = err instanceof HboneError ? err : (err as Error);
      this.emit('tunnel-failed', { route, client, error });
    }
  }

  /** Stop accepting, let open tunnels finish, then close the pooled HBONE connections. */
  async close(): Promise<void> {
    await Promise.all(this.#servers.map((s) => new Promise((r) => s.close(r))));
    await this.#hbone.close();
  }

  destroy(): void {
    for (const s of this.#servers) s.close();
    for (const s of this.#sockets) s.destroy();
    this.#hbone.destroy();
  }
}
