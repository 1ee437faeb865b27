import {
  IstioIdentity,
  LocalCa,
  SecretManager,
  SpiffeError,
  TrustBundle,
  X509Svid,
} from '@mesh/spiffe';

// An in-memory CA (LocalCa.open(dir) reads and writes Istio's plug-in CA files instead).
const ca = LocalCa.create({ trustDomain: 'cluster.local' });
const id = IstioIdentity.of({
  trustDomain: 'cluster.local',
  namespace: 'shop',
  serviceAccount: 'api',
});
console.log(id.toString(), id.principal); // spiffe://cluster.local/ns/shop/sa/api cluster.local/ns/shop/sa/api

// One rotating certificate per identity: fetched on first use, renewed at half its lifetime.
const secrets = new SecretManager({ issuer: ca, ttlSeconds: 3600 });
const cert = await secrets.getCertificate(id);
console.log('valid until', cert.notAfter.toISOString() > new Date().toISOString());

// What a peer does with the chain it receives in a TLS handshake.
const svid = X509Svid.parse([cert.leaf, ...cert.intermediates]);
const { identity } = svid.verify(TrustBundle.from(cert.roots));
console.log('verified', identity.toString());

// Bad input is a typed error with a stable code.
try {
  IstioIdentity.parse('spiffe://cluster.local/ns/shop');
} catch (err) {
  if (err instanceof SpiffeError) console.log(err.code); // ERR_SPIFFE_ID_NOT_ISTIO
}
await secrets.close();
