import { execFile } from 'node:child_process';
import { X509Certificate } from 'node:crypto';
import { readFile, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import {
  createWorkloadCertificate,
  hasTrustDomain,
  isExpired,
  istioIdentityFromX509,
  LocalCa,
  lifetimeElapsed,
  matchExpectedIdentity,
  parseCertificate,
  parseCertificates,
  refreshTime,
  SpiffeId,
  spiffeIdFromCertificate,
  spiffeIdFromX509,
  TrustBundle,
  timeToExpiry,
  uriSansOf,
  verifyChain,
  workloadCertificateFromCertChain,
  X509Svid,
} from '@mesh/spiffe';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { codeOf } from './helpers/errors.js';
import { tempDir } from './helpers/openssl.js';

const exec = promisify(execFile);
const DEMO = SpiffeId.parse('spiffe://cluster.local/ns/default/sa/demo');

let dir: string;
let ca: LocalCa;

/** A leaf signed by `ca` with openssl, carrying the given extension lines (an independent issuer). */
async function opensslLeaf(ext: string, name = 'leaf'): Promise<string> {
  const sh = `
    set -e
    cd ${dir}
    openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout ${name}-key.pem \\
      -out ${name}.csr -subj "/O=test" 2>/dev/null
    printf '%s\\n' "${ext.split('\n').join('" "')}" > ${name}.cnf
    openssl x509 -req -in ${name}.csr -CA ca-cert.pem -CAkey ca-key.pem -set_serial 0x${Math.floor(Math.random() * 1e9).toString(16)} \\
      -days 1 -extfile ${name}.cnf -out ${name}.pem 2>/dev/null
  `;
  await exec('sh', ['-c', sh]);
  return readFile(join(dir, `${name}.pem`), 'utf8');
}

const SVID_EXT = 'basicConstraints=critical,CA:false\nkeyUsage=critical,digitalSignature';

beforeAll(async () => {
  dir = await tempDir('spiffe-svid-');
  ca = await LocalCa.open(dir);
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe('X.509-SVID parsing', () => {
  it('parses a PEM chain and a DER leaf into the same certificate', async () => {
    const cert = await ca.issue(DEMO);
    const fromPem = parseCertificate(cert.leaf);
    const fromDer = parseCertificate(fromPem.der);
    expect(fromDer.equals(fromPem)).toBe(true);
    expect(fromDer.pem).toBe(cert.leaf);
    expect(X509Svid.parse(fromPem.der).identity.toString()).toBe(DEMO.toString());
    expect(parseCertificates(cert.leaf + cert.roots.join(''))).toHaveLength(2);
  });

  it('extracts the SPIFFE ID of an openssl-issued SVID', async () => {
    const pem = await opensslLeaf(`${SVID_EXT}\nsubjectAltName=critical,URI:${DEMO}`);
    expect(spiffeIdFromCertificate(parseCertificate(pem)).toString()).toBe(DEMO.toString());
    expect(X509Svid.parse(pem).verify(ca.trustBundle).identity.equals(DEMO)).toBe(true);
  });

  it('rejects a certificate with two URI SANs', async () => {
    const pem = await opensslLeaf(
      `${SVID_EXT}\nsubjectAltName=critical,URI:${DEMO},URI:spiffe://cluster.local/ns/x/sa/y`,
    );
    expect(codeOf(() => X509Svid.parse(pem))).toBe('ERR_SPIFFE_SVID_MULTIPLE_URI_SANS');
  });

  it('rejects a certificate whose URI SAN is not a SPIFFE ID', async () => {
    const pem = await opensslLeaf(`${SVID_EXT}\nsubjectAltName=URI:https://example.com/ns/a/sa/b`);
    expect(codeOf(() => X509Svid.parse(pem))).toBe('ERR_SPIFFE_SVID_URI_NOT_SPIFFE');
  });

  it('rejects a certificate with no URI SAN', async () => {
    const pem = await opensslLeaf(`${SVID_EXT}\nsubjectAltName=DNS:example.com`);
    expect(codeOf(() => X509Svid.parse(pem))).toBe('ERR_SPIFFE_SVID_NO_URI_SAN');
  });

  it.each([
    ['garbage', 'ERR_SPIFFE_PEM_INVALID'],
    ['-----BEGIN CERTIFICATE-----\nMIIB\n', 'ERR_SPIFFE_PEM_INVALID'],
    ['-----BEGIN CERTIFICATE-----\n!!!!\n-----END CERTIFICATE-----\n', 'ERR_SPIFFE_PEM_INVALID'],
    ['-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n', 'ERR_SPIFFE_CERT_INVALID'],
    ['-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n', 'ERR_SPIFFE_PEM_INVALID'],
  ])('rejects malformed PEM %j with %s', (input, code) => {
    expect(codeOf(() => parseCertificates(input))).toBe(code);
  });

  it('rejects DER that is not a certificate', () => {
    expect(codeOf(() => parseCertificates(Buffer.from([0x30, 0x03, 0x02, 0x01, 0x01])))).toBe(
      'ERR_SPIFFE_CERT_INVALID',
    );
  });
});

describe('chain validation', () => {
  it('accepts a chain at a time inside every validity window', async () => {
    const cert = await ca.issue(DEMO, { ttlSeconds: 600 });
    const verified = verifyChain(parseCertificates(cert.leaf), TrustBundle.from(cert.roots), {
      trustDomain: 'cluster.local',
    });
    expect(verified.identity.equals(DEMO)).toBe(true);
    expect(verified.path.map((c) => c.isCa)).toEqual([false, true]);
  });

  it('rejects an expired certificate', async () => {
    const cert = await ca.issue(DEMO, { ttlSeconds: 60 });
    const at = new Date(cert.notAfter.getTime() + 1000);
    expect(codeOf(() => X509Svid.parse(cert.leaf).verify(ca.trustBundle, { at }))).toBe(
      'ERR_SPIFFE_CERT_EXPIRED',
    );
    expect(isExpired(cert, at)).toBe(true);
  });

  it('rejects a certificate that is not yet valid', async () => {
    const cert = await ca.issue(DEMO, { ttlSeconds: 60 });
    const at = new Date(cert.notBefore.getTime() - 1000);
    expect(codeOf(() => X509Svid.parse(cert.leaf).verify(ca.trustBundle, { at }))).toBe(
      'ERR_SPIFFE_CERT_NOT_YET_VALID',
    );
  });

  it('rejects a chain that does not reach the bundle, even from a CA of the same name', async () => {
    const foreign = LocalCa.create();
    const cert = await foreign.issue(DEMO);
    expect(codeOf(() => X509Svid.parse(cert.leaf).verify(ca.trustBundle))).toBe(
      'ERR_SPIFFE_CHAIN_UNTRUSTED',
    );
  });

  it('accepts a chain reaching any root of a bundle holding several', async () => {
    const other = LocalCa.create({ trustDomain: 'other.example' });
    const bundle = ca.trustBundle.merge(other.trustBundle);
    expect(bundle.roots).toHaveLength(2);
    const a = await ca.issue(DEMO);
    const b = await other.issue(SpiffeId.parse('spiffe://other.example/ns/x/sa/y'));
    expect(X509Svid.parse(a.leaf).verify(bundle).identity.trustDomain).toBe('cluster.local');
    expect(X509Svid.parse(b.leaf).verify(bundle).identity.trustDomain).toBe('other.example');
    expect(
      codeOf(() => X509Svid.parse(b.leaf).verify(bundle, { trustDomain: 'cluster.local' })),
    ).toBe('ERR_SPIFFE_CHAIN_UNTRUSTED');
  });

  it('rejects a leaf whose signature was tampered with', async () => {
    const cert = await ca.issue(DEMO);
    const der = Buffer.from(parseCertificate(cert.leaf).der);
    der[der.length - 5]! ^= 0x01;
    const tampered = parseCertificates(der);
    expect(codeOf(() => verifyChain(tampered, ca.trustBundle))).toBe('ERR_SPIFFE_CHAIN_INVALID');
  });

  it('rejects a leaf that is a CA', async () => {
    const pem = await opensslLeaf(
      `basicConstraints=critical,CA:true\nkeyUsage=critical,digitalSignature,keyCertSign\nsubjectAltName=critical,URI:${DEMO}`,
    );
    expect(codeOf(() => X509Svid.parse(pem).verify(ca.trustBundle))).toBe(
      'ERR_SPIFFE_SVID_INVALID',
    );
  });

  it('rejects a leaf without digitalSignature key usage', async () => {
    const pem = await opensslLeaf(
      `basicConstraints=critical,CA:false\nkeyUsage=critical,keyEncipherment\nsubjectAltName=critical,URI:${DEMO}`,
    );
    expect(codeOf(() => X509Svid.parse(pem).verify(ca.trustBundle))).toBe(
      'ERR_SPIFFE_SVID_INVALID',
    );
  });

  it('rejects an intermediate that is not a CA', async () => {
    // A leaf "signed" by another leaf: the name chain matches, the CA profile does not.
    const signer = await ca.issue(SpiffeId.parse('spiffe://cluster.local/ns/a/sa/signer'));
    const signerCert = parseCertificate(signer.leaf);
    expect(signerCert.isCa).toBe(false);
    const sh = `
      set -e
      cd ${dir}
      printf '%s' "$SIGNER_KEY" > signer-key.pem
      printf '%s' "$SIGNER_CERT" > signer-cert.pem
      openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout sub-key.pem -out sub.csr -subj "/O=sub" 2>/dev/null
      printf 'basicConstraints=critical,CA:false\\nkeyUsage=critical,digitalSignature\\nsubjectAltName=critical,URI:${DEMO}\\n' > sub.cnf
      openssl x509 -req -in sub.csr -CA signer-cert.pem -CAkey signer-key.pem -set_serial 7 -days 1 -extfile sub.cnf -out sub.pem 2>/dev/null
    `;
    await exec('sh', ['-c', sh], {
      env: { ...process.env, SIGNER_KEY: signer.privateKey, SIGNER_CERT: signer.leaf },
    });
    const sub = await readFile(join(dir, 'sub.pem'), 'utf8');
    expect(codeOf(() => X509Svid.parse([sub, signer.leaf]).verify(ca.trustBundle))).toBe(
      'ERR_SPIFFE_CHAIN_INVALID',
    );
  });
});

describe('WorkloadCertificate assembly', () => {
  it('splits an istiod cert_chain whose last element holds several roots', async () => {
    const other = LocalCa.create();
    const { csr, privateKey } = (await import('@mesh/spiffe')).createCsr(DEMO);
    const chain = ca.signCsr(csr);
    chain[chain.length - 1] += other.roots[0];
    const cert = workloadCertificateFromCertChain(privateKey, chain, DEMO);
    expect(cert.roots).toHaveLength(2);
    expect(cert.intermediates).toEqual([]);
    expect(cert.identity.equals(DEMO)).toBe(true);
  });

  it('rejects a leaf carrying another identity than requested', async () => {
    const { csr, privateKey } = (await import('@mesh/spiffe')).createCsr(DEMO);
    const chain = ca.signCsr(csr);
    expect(
      codeOf(() =>
        workloadCertificateFromCertChain(
          privateKey,
          chain,
          SpiffeId.parse('spiffe://cluster.local/ns/default/sa/other'),
        ),
      ),
    ).toBe('ERR_SPIFFE_CA_IDENTITY_MISMATCH');
  });

  it('rejects a private key of the wrong type', async () => {
    const cert = await ca.issue(DEMO);
    const { generateKeyPairSync } = await import('node:crypto');
    const rsa = generateKeyPairSync('rsa', { modulusLength: 2048 }).privateKey.export({
      format: 'pem',
      type: 'pkcs8',
    }) as string;
    expect(
      codeOf(() =>
        createWorkloadCertificate({ privateKey: rsa, leaf: cert.leaf, roots: cert.roots }),
      ),
    ).toBe('ERR_SPIFFE_KEY_UNSUPPORTED');
  });

  it('rejects a private key that does not match the leaf', async () => {
    const a = await ca.issue(DEMO);
    const b = await ca.issue(DEMO);
    expect(
      codeOf(() =>
        createWorkloadCertificate({ privateKey: b.privateKey, leaf: a.leaf, roots: a.roots }),
      ),
    ).toBe('ERR_SPIFFE_KEY_INVALID');
  });
});

describe('expiry helpers', () => {
  it('computes the 50 % refresh point, remaining time and elapsed fraction', () => {
    const cert = { notBefore: new Date(1_000_000), notAfter: new Date(1_100_000) };
    expect(refreshTime(cert, new Date(1_010_000)).getTime()).toBe(1_050_000);
    expect(timeToExpiry(cert, new Date(1_090_000))).toBe(10_000);
    expect(lifetimeElapsed(cert, new Date(1_025_000))).toBe(0.25);
    expect(isExpired(cert, new Date(1_100_001))).toBe(true);
    expect(isExpired(cert, new Date(1_100_000))).toBe(false);
  });

  it('refreshes right away when notBefore is in the future', () => {
    const now = new Date(500_000);
    const cert = { notBefore: new Date(1_000_000), notAfter: new Date(1_100_000) };
    expect(refreshTime(cert, now).getTime()).toBe(now.getTime());
  });
});

describe('peer identity from a Node X509Certificate', () => {
  it('reads URI SANs from subjectAltName without being fooled by quoted commas', async () => {
    const cnf = [
      '[req]',
      'distinguished_name=dn',
      '[dn]',
      '[ext]',
      'subjectAltName=@alt',
      '[alt]',
      'URI.1 = http://a/b, URI:spiffe://evil.example/ns/x/sa/y',
      'DNS.1 = example.com',
      'URI.2 = spiffe://cluster.local/ns/a/sa/b',
      '',
    ].join('\n');
    const { writeFile } = await import('node:fs/promises');
    await writeFile(join(dir, 'alt.cnf'), cnf);
    await exec('sh', [
      '-c',
      `cd ${dir} && openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout /dev/null -subj /O=x -config alt.cnf -extensions ext -days 1 -out alt.pem 2>/dev/null`,
    ]);
    const pem = await readFile(join(dir, 'alt.pem'), 'utf8');
    const x509 = new X509Certificate(pem);
    const expected = [
      'http://a/b, URI:spiffe://evil.example/ns/x/sa/y',
      'spiffe://cluster.local/ns/a/sa/b',
    ];
    expect(uriSansOf(x509)).toEqual(expected);
    expect(parseCertificate(pem).uriSans).toEqual(expected);
    expect(istioIdentityFromX509(x509)?.toString()).toBe('spiffe://cluster.local/ns/a/sa/b');
    expect(codeOf(() => spiffeIdFromX509(x509))).toBe('ERR_SPIFFE_SVID_MULTIPLE_URI_SANS');
  });

  it('agrees with the full parser on an issued SVID', async () => {
    const cert = await ca.issue(DEMO);
    const x509 = new X509Certificate(cert.leaf);
    expect(spiffeIdFromX509(x509).toString()).toBe(DEMO.toString());
    expect(istioIdentityFromX509(x509)?.principal).toBe('cluster.local/ns/default/sa/demo');
    expect(uriSansOf({ subjectAltName: undefined })).toEqual([]);
  });
});

describe('TLS identity rules (ztunnel §2.1)', () => {
  it('matches a server certificate against the expected identities, ignoring DNS names', async () => {
    const cert = new X509Certificate((await ca.issue(DEMO)).leaf);
    const other = SpiffeId.parse('spiffe://cluster.local/ns/x/sa/y');
    expect(matchExpectedIdentity(cert, [other, DEMO])?.toString()).toBe(DEMO.toString());
    expect(matchExpectedIdentity(cert, [DEMO.toString()])?.toString()).toBe(DEMO.toString());
    expect(matchExpectedIdentity(cert, [other])).toBeUndefined();
    expect(matchExpectedIdentity(cert, [])).toBeUndefined();
    const dnsOnly = new X509Certificate(
      await opensslLeaf(`${SVID_EXT}\nsubjectAltName=DNS:${DEMO.toString().slice(9)}`, 'dns'),
    );
    expect(matchExpectedIdentity(dnsOnly, [DEMO])).toBeUndefined();
  });

  it('accepts a client only from the server trust domain', async () => {
    const cert = new X509Certificate((await ca.issue(DEMO)).leaf);
    expect(hasTrustDomain(cert, 'cluster.local')).toBe(true);
    expect(hasTrustDomain(cert, 'other.example')).toBe(false);
    const foreign = LocalCa.create({ trustDomain: 'other.example' });
    const foreignCert = new X509Certificate(
      (await foreign.issue(SpiffeId.parse('spiffe://other.example/ns/a/sa/b'))).leaf,
    );
    expect(hasTrustDomain(foreignCert, 'cluster.local')).toBe(false);
  });
});
