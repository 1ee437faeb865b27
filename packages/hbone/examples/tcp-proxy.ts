/**
 * A tiny custom TCP proxy that tunnels through HBONE:
 *
 *   tcp client ──► local proxy :P ══ HBONE (mTLS + HTTP/2 CONNECT) ══► HboneServer ──► echo app
 *
 * Run: node --conditions=@mesh/source --import tsx packages/hbone/examples/tcp-proxy.ts
 */
import { once } from 'node:events';
import { type AddressInfo, connect, createServer } from 'node:net';
import { HboneClient, HboneServer } from '@mesh/hbone';
import { IstioIdentity, LocalCa } from '@mesh/spiffe';

const ca = LocalCa.create({ trustDomain: 'cluster.local' });
const serverId = IstioIdentity.of({
  trustDomain: 'cluster.local',
  namespace: 'demo',
  serviceAccount: 'echo',
});
const clientId = IstioIdentity.of({
  trustDomain: 'cluster.local',
  namespace: 'demo',
  serviceAccount: 'proxy',
});

// 1. The application behind the HBONE server: a TCP echo service.
const app = createServer({ allowHalfOpen: true }, (s) => s.pipe(s));
app.listen(0, '127.0.0.1');
await once(app, 'listening');
const appPort = (app.address() as AddressInfo).port;

// 2. The HBONE server (what ztunnel runs on :15008): policy + destination per CONNECT.
const hbone = new HboneServer({
  certificate: ca.issueSync(serverId),
  onConnect: (req) => {
    if (req.peer.identity.toString() !== clientId.toString()) {
      return { type: 'refuse', status: 401, reason: 'not allowed' };
    }
    return { type: 'dial', host: '127.0.0.1', port: appPort };
  },
});
hbone.on('tunnel-close', (t, info) =>
  console.log(
    `server: tunnel ${t.request.rawAuthority} closed, ${info.bytesReceived} B in, ${info.bytesSent} B out`,
  ),
);
const { port: hbonePort } = await hbone.listen({ host: '127.0.0.1' });

// 3. The proxy: every local TCP connection becomes one tunnel on a pooled HBONE connection.
const client = new HboneClient({ certificates: ca.issueSync(clientId) });
const proxy = createServer({ allowHalfOpen: true, noDelay: true }, async (socket) => {
  socket.on('error', () => {});
  try {
    const tunnel = await client.connect({
      authority: `127.0.0.1:${appPort}`,
      via: { host: '127.0.0.1', port: hbonePort },
      sourceIdentity: clientId,
      expectedIdentities: [serverId],
      forwarded: { for: { address: socket.remoteAddress!, port: socket.remotePort! } },
    });
    tunnel.pipe(socket); // both directions, backpressure, half-close
  } catch (err) {
    console.error('proxy: tunnel failed:', (err as Error).message);
    socket.destroy();
  }
});
proxy.listen(0, '127.0.0.1');
await once(proxy, 'listening');

// 4. A plain TCP client talks to the app through the proxy.
const conn = connect((proxy.address() as AddressInfo).port, '127.0.0.1');
conn.end('hello through HBONE');
let reply = '';
for await (const chunk of conn) reply += chunk;
console.log(`client: got "${reply}"`);

proxy.close();
client.destroy();
await hbone.close({ graceMs: 1000 });
app.close();
