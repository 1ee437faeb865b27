// Identity demo: an embedded CA in a temporary directory issues an X.509-SVID, which is
// printed and verified. Run from the repo root with `pnpm demo`, or directly:
//   node --conditions=@mesh/source --import tsx packages/spiffe/demo/identity-demo.ts
import { mkdtemp, readdir, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  IstioCaClient,
  IstioCaServer,
  LocalCa,
  parseCertificates,
  SpiffeId,
  TrustBundle,
  X509Svid,
} from '@mesh/spiffe';

const identity = SpiffeId.parse('spiffe://cluster.local/ns/default/sa/demo');
const dir = await mkdtemp(join(tmpdir(), 'mesh-identity-demo-'));
const line = (s = '') => console.log(s);

try {
  line('== 1. Embedded CA (Istio plug-in CA layout)');
  const ca = await LocalCa.open(dir, { trustDomain: identity.trustDomain });
  for (const name of (await readdir(dir)).sort()) {
    const mode = ((await stat(join(dir, name))).mode & 0o777).toString(8);
    line(`   ${join(dir, name)}  mode ${mode}`);
  }
  const root = ca.trustBundle.roots[0]!;
  line(
    `   root: ${root.subject}, serial ${root.serialNumber}, valid until ${root.notAfter.toISOString()}`,
  );

  line();
  line('== 2. Issue an SVID over the Istio CA gRPC API (TLS on loopback)');
  const server = new IstioCaServer({ ca, tokens: { 'demo-token': { mayImpersonate: true } } });
  await server.listen();
  // A DNS name rather than 127.0.0.1: grpc-js would send an IP as TLS SNI (Node warns).
  const client = new IstioCaClient({
    address: `localhost:${server.port}`,
    rootCert: server.rootCert,
    token: 'demo-token',
  });
  const cert = await client.issue(identity, { ttlSeconds: 3600 });
  client.close();
  await server.close();
  line(`   CA endpoint: localhost:${server.port} (serving certificate issued by the same CA)`);
  line(`   identity:    ${cert.identity}`);
  line(`   principal:   ${cert.identity.asIstio()?.principal}`);
  line(`   serial:      ${cert.serialNumber}`);
  line(`   not before:  ${cert.notBefore.toISOString()}`);
  line(
    `   expires:     ${cert.notAfter.toISOString()} (in ${Math.round((cert.notAfter.getTime() - Date.now()) / 60_000)} min)`,
  );

  line();
  line('== 3. Chain (leaf first)');
  const chain = parseCertificates([cert.leaf, ...cert.intermediates, ...cert.roots]);
  chain.forEach((c, i) => {
    const role = i === 0 ? 'leaf' : c.isSelfSigned ? 'root' : 'intermediate';
    line(`   [${i}] ${role}`);
    line(`       subject:  ${c.subject || '(empty)'}`);
    line(`       issuer:   ${c.issuer}`);
    line(
      `       SANs:     ${[...c.uriSans.map((u) => `URI:${u}`), ...c.dnsSans.map((d) => `DNS:${d}`)].join(', ') || '-'}`,
    );
    line(`       CA:       ${c.isCa}   key usage: ${[...(c.keyUsage ?? [])].join(', ')}`);
    line(`       validity: ${c.notBefore.toISOString()} .. ${c.notAfter.toISOString()}`);
  });
  line();
  line(cert.leaf.trimEnd());

  line();
  line('== 4. Verify against the trust bundle');
  const verified = X509Svid.parse([cert.leaf, ...cert.intermediates]).verify(
    TrustBundle.from(cert.roots),
    { trustDomain: identity.trustDomain },
  );
  line(
    `   OK: ${verified.identity} chains to "${verified.path.at(-1)!.subject}" (${verified.path.length} certificates)`,
  );
} finally {
  await rm(dir, { recursive: true, force: true });
}
