import { once } from 'node:events';
import { type AddressInfo, createServer } from 'node:net';
import { HboneClient, HboneError, HboneServer } from '@mesh/hbone';
import { IstioIdentity, LocalCa } from '@mesh/spiffe';

const ca = LocalCa.create({ trustDomain: 'cluster.local' });
const serverId = IstioIdentity.of({
  trustDomain: 'cluster.local',
  namespace: 'shop',
  serviceAccount: 'api',
});
const clientId = IstioIdentity.of({
  trustDomain: 'cluster.local',
  namespace: 'shop',
  serviceAccount: 'web',
});

// The workload: an upper-casing TCP service.
const app = createServer((s) =>
  s.on('data', (d) => s.write(String(d).toUpperCase())).on('end', () => s.end()),
);
app.listen(0, '127.0.0.1');
await once(app, 'listening');
const appPort = (app.address() as AddressInfo).port;

// The HBONE server decides per CONNECT stream: refuse with a status, or dial.
const server = new HboneServer({
  certificate: ca.issueSync(serverId),
  onConnect: (req) =>
    req.peer.identity.toString() === clientId.toString() && req.authority.port === appPort
      ? { type: 'dial', host: '127.0.0.1', port: appPort }
      : { type: 'refuse', status: 401, reason: 'denied' },
});
server.on('tunnel-close', (t, info) =>
  console.log(`server: tunnel from ${t.peer.identity} closed, ${info.bytesReceived} bytes in`),
);
const { port } = await server.listen({ host: '127.0.0.1' });

// The client pools HTTP/2 connections per (identity, expected peer, next hop, source IP).
const client = new HboneClient({ certificates: ca.issueSync(clientId) });
const tunnel = await client.connect({
  authority: `127.0.0.1:${appPort}`,
  via: { host: '127.0.0.1', port },
  sourceIdentity: clientId,
  expectedIdentities: [serverId],
});
tunnel.stream.end('hello mesh');
let reply = '';
for await (const chunk of tunnel.stream) reply += chunk;
console.log(`client: ${reply} from ${tunnel.peerIdentity}`); // HELLO MESH from spiffe://.../sa/api

// A refused CONNECT is an HboneError with the status.
try {
  await client.connect({
    authority: '127.0.0.1:1',
    via: { host: '127.0.0.1', port },
    sourceIdentity: clientId,
    expectedIdentities: [serverId],
  });
} catch (err) {
  if (err instanceof HboneError) console.log(`client: ${err.code} ${err.status}`); // ERR_HBONE_HTTP_STATUS 401
}

await client.close();
await server.close();
app.close();
