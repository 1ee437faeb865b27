// embed-hbone: a TCP proxy of your own that reaches a mesh workload through HBONE.
//
//   pnpm --filter @mesh/example-embed-hbone start              run two requests and exit
//   pnpm --filter @mesh/example-embed-hbone start -- --keep    keep running; try it with curl
//   pnpm --filter @mesh/example-embed-hbone start -- --as intruder   a peer the destination refuses
import { request } from 'node:http';
import { parseArgs } from 'node:util';
import { IstioIdentity, LocalCa, SecretManager } from '@mesh/spiffe';
import { startDestination } from './destination.js';
import { MeshTcpProxy } from './proxy.js';

const { values: args } = parseArgs({
  options: {
    keep: { type: 'boolean', default: false },
    as: { type: 'string', default: 'edge-proxy' },
    requests: { type: 'string', default: '2' },
  },
});
const log = (line: string) => console.log(line);

// One CA for the whole example: in a cluster, istiod (or your CA) plays this part.
const trustDomain = 'cluster.local';
const ca = LocalCa.create({ trustDomain });
const apiId = IstioIdentity.of({ trustDomain, namespace: 'shop', serviceAccount: 'api' });
const proxyId = IstioIdentity.of({ trustDomain, namespace: 'edge', serviceAccount: args.as });
const allowedId = IstioIdentity.of({
  trustDomain,
  namespace: 'edge',
  serviceAccount: 'edge-proxy',
});

const destination = await startDestination({
  certificate: ca.issueSync(apiId),
  allowed: [allowedId],
  log,
});
log(
  `destination: HBONE on 127.0.0.1:${destination.address.port} as ${apiId}, app on 127.0.0.1:${destination.appAddress.port}`,
);

// The proxy's certificates come from a SecretManager: fetched on first use, renewed at half
// of their lifetime, exactly one per identity.
const secrets = new SecretManager({ issuer: ca, ttlSeconds: 3600 });
const proxy = new MeshTcpProxy({ identity: proxyId, certificates: secrets });
proxy.on('tunnel-open', (t) =>
  log(`proxy: ${t.client} tunnelled to ${t.route.authority} (server ${t.peer})`),
);
proxy.on('tunnel-close', (t) =>
  log(
    `proxy: ${t.client} closed, ${t.up} bytes up, ${t.down} bytes down${t.error ? `, ${t.error.message}` : ''}`,
  ),
);
proxy.on('tunnel-failed', (t) => {
  const code = (t.error as { code?: string }).code ?? 'error';
  log(`proxy: ${t.client} refused: ${code}: ${t.error.message}`);
});

const listening = await proxy.add({
  listen: { host: '127.0.0.1', port: 0 },
  authority: `127.0.0.1:${destination.appAddress.port}`,
  via: { host: '127.0.0.1', port: destination.address.port },
  expectedIdentities: [apiId],
});
log(`proxy: listening on 127.0.0.1:${listening.port} as ${proxyId}`);

function get(path: string): Promise<string> {
  return new Promise((resolve) => {
    const req = request({ host: '127.0.0.1', port: listening.port, path, agent: false }, (res) => {
      let body = '';
      res.setEncoding('utf8').on('data', (d) => (body += d));
      res.on('end', () => resolve(`HTTP ${res.statusCode} ${body.trim()}`));
    });
    req.on('error', (err) => resolve(`failed: ${err.message}`));
    req.end();
  });
}

if (args.keep) {
  log(`try: curl http://127.0.0.1:${listening.port}/   (Ctrl-C to stop)`);
  await new Promise((resolve) => {
    process.once('SIGINT', resolve);
    process.once('SIGTERM', resolve);
  });
} else {
  for (let i = 1; i <= Number(args.requests); i++) {
    log(`client: GET /request-${i} -> ${await get(`/request-${i}`)}`);
  }
  // Both requests rode one pooled HBONE connection: one TLS handshake for any number of tunnels.
  log(`proxy: HBONE dials ${proxy.stats.dialsTotal}, connections open ${proxy.stats.connections}`);
}

await proxy.close();
await destination.close();
secrets.close();
