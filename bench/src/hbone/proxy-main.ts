/**
 * One side of an HBONE pair for the benchmarks, in its own process:
 *
 *   client role: TCP listener -> HboneClient (pooled, or a fresh connection per tunnel)
 *   server role: HboneServer -> TCP to the target
 *
 * Usage: proxy-main.ts '<json ProxyConfig>'; prints `READY <port>` once listening and exits
 * cleanly on SIGTERM (so --cpu-prof profiles are written).
 */

import { X509Certificate } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { type AddressInfo, createServer, type Socket } from 'node:net';
import { HboneClient, HboneServer } from '@mesh/hbone';
import { SpiffeId, type WorkloadCertificate } from '@mesh/spiffe';

export interface ProxyConfig {
  role: 'client' | 'server';
  /** Where the client proxy's HBONE server is (client) or where tunnels go (server). */
  target: { host: string; port: number };
  certPath: string;
  keyPath: string;
  caPath: string;
  identity: string;
  /** Client: the identity the server must present. */
  peerIdentity?: string;
  /** Client: a new TLS connection per tunnel instead of the pool. */
  fresh?: boolean;
}

const config = JSON.parse(process.argv[2] ?? '{}') as ProxyConfig;

function certificate(): WorkloadCertificate {
  const leaf = readFileSync(config.certPath, 'utf8');
  const x509 = new X509Certificate(leaf);
  return {
    identity: SpiffeId.parse(config.identity),
    privateKey: readFileSync(config.keyPath, 'utf8'),
    leaf,
    intermediates: [],
    roots: [readFileSync(config.caPath, 'utf8')],
    notBefore: new Date(x509.validFrom),
    notAfter: new Date(x509.validTo),
    serialNumber: x509.serialNumber.toLowerCase(),
  };
}

const cert = certificate();
let stop: () => Promise<void>;

if (config.role === 'server') {
  const server = new HboneServer({
    certificate: cert,
    onConnect: () => ({ type: 'dial', host: config.target.host, port: config.target.port }),
  });
  const { port } = await server.listen({ host: '127.0.0.1' });
  stop = () => server.close({ graceMs: 500 });
  console.log(`READY ${port}`);
} else {
  const expected = [config.peerIdentity!];
  const via = { host: config.target.host, port: config.target.port };
  const authority = `${config.target.host}:${config.target.port}`;
  const pooled = new HboneClient({ certificates: cert });
  const listener = createServer({ allowHalfOpen: true, noDelay: true }, async (socket: Socket) => {
    socket.on('error', () => {});
    const client = config.fresh ? new HboneClient({ certificates: cert }) : pooled;
    try {
      const tunnel = await client.connect({
        authority,
        via,
        sourceIdentity: cert.identity,
        expectedIdentities: expected,
        forwarded: { for: { address: socket.remoteAddress!, port: socket.remotePort! } },
      });
      const splice = tunnel.pipe(socket);
      if (config.fresh) void splice.done.then(() => client.close());
    } catch (err) {
      console.error(`tunnel failed: ${(err as Error).message}`);
      socket.destroy();
      if (config.fresh) client.destroy();
    }
  });
  await new Promise<void>((r) => listener.listen(0, '127.0.0.1', 1024, r));
  stop = async () => {
    listener.close();
    pooled.destroy();
  };
  console.log(`READY ${(listener.address() as AddressInfo).port}`);
}

// HBONE_PROFILE=<file>: profile this process's main thread with the inspector (--cpu-prof
// under tsx records the loader thread instead).
const profileFile = process.env.HBONE_PROFILE;
let writeProfile = async () => {};
if (profileFile) {
  const { Session } = await import('node:inspector/promises');
  const { writeFileSync } = await import('node:fs');
  const session = new Session();
  session.connect();
  await session.post('Profiler.enable');
  await session.post('Profiler.start');
  writeProfile = async () => {
    const { profile } = await session.post('Profiler.stop');
    writeFileSync(
      `${profileFile}-${config.role}-${process.pid}.cpuprofile`,
      JSON.stringify(profile),
    );
  };
}

process.once('SIGTERM', () => {
  void stop()
    .then(() => writeProfile())
    .finally(() => process.exit(0));
});
