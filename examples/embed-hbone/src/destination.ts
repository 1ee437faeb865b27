// The "mesh destination" for the example: what a destination node's ztunnel does on port
// 15008 (terminate HBONE, check the peer, dial the workload), in front of a small HTTP app.
import { once } from 'node:events';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { HboneServer } from '@mesh/hbone';
import type { IstioIdentity, WorkloadCertificate } from '@mesh/spiffe';

export async function startDestination(options: {
  certificate: WorkloadCertificate;
  /** Peers allowed in; everyone else gets 401, as an AuthorizationPolicy denial would. */
  allowed: readonly IstioIdentity[];
  log: (line: string) => void;
}) {
  const app = createServer((req, res) => {
    res.end(`hello from ${options.certificate.identity} (${req.method} ${req.url})\n`);
  });
  app.listen(0, '127.0.0.1');
  await once(app, 'listening');
  const appAddress = app.address() as AddressInfo;

  const hbone = new HboneServer({
    certificate: options.certificate,
    onConnect: (req) => {
      const peer = req.peer.identity.toString();
      const forwarded = req.headers.forwarded ?? '-';
      if (!options.allowed.some((id) => id.toString() === peer)) {
        options.log(`destination: refused ${peer} (forwarded: ${forwarded})`);
        return { type: 'refuse', status: 401, reason: `${peer} is not allowed` };
      }
      options.log(
        `destination: CONNECT ${req.rawAuthority} from ${peer} (forwarded: ${forwarded})`,
      );
      // Only the app's own address may be reached through this server.
      if (req.authority.port !== appAddress.port) {
        return { type: 'refuse', status: 503, reason: 'no such workload port' };
      }
      return { type: 'dial', host: '127.0.0.1', port: appAddress.port };
    },
  });
  const address = await hbone.listen({ host: '127.0.0.1' });
  return {
    hbone,
    address,
    appAddress,
    async close() {
      await hbone.close({ graceMs: 1000 });
      app.closeAllConnections();
      await new Promise((r) => app.close(r));
    },
  };
}
