import { execFile } from 'node:child_process';
import { createPrivateKey } from 'node:crypto';
import { promisify } from 'node:util';
import { createCsr, decodePem, encodePem, LocalCa, parseCsr, SpiffeId } from '@mesh/spiffe';
import { describe, expect, it } from 'vitest';
import { codeOf } from './helpers/errors.js';
import { openssl } from './helpers/openssl.js';

const exec = promisify(execFile);
const DEMO = SpiffeId.parse('spiffe://cluster.local/ns/default/sa/demo');

/** A CSR made by openssl with the given key algorithm options and request extensions. */
async function opensslCsr(keyArgs: string[], addext: string[]): Promise<string> {
  const args = ['req', '-new', '-nodes', '-keyout', '/dev/null', '-subj', '/', ...keyArgs];
  for (const e of addext) args.push('-addext', e);
  const { stdout } = await exec('openssl', args, { encoding: 'utf8' });
  return stdout;
}
const EC = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256'];

describe('createCsr', () => {
  it('makes CSRs that openssl req -verify accepts', async () => {
    for (let i = 0; i < 5; i++) {
      const { csr } = createCsr(DEMO);
      const res = await openssl(['req', '-verify', '-noout', '-in', '{dir}/req.pem'], {
        'req.pem': csr,
      });
      expect(res.code).toBe(0);
      expect(`${res.stdout}${res.stderr}`).toMatch(/verify OK/);
    }
  });

  it('matches ztunnel: P-256 key, ecdsa-with-SHA256, empty subject, one critical URI SAN', async () => {
    const { csr, privateKey } = createCsr(DEMO);
    const { stdout } = await openssl(['req', '-noout', '-text', '-in', '{dir}/req.pem'], {
      'req.pem': csr,
    });
    expect(stdout).toMatch(/Subject: *\n/);
    expect(stdout).toMatch(/NIST CURVE: P-256/);
    expect(stdout).toMatch(/Signature Algorithm: ecdsa-with-SHA256/);
    expect(stdout).toMatch(
      /Subject Alternative Name: critical\s+URI:spiffe:\/\/cluster\.local\/ns\/default\/sa\/demo\n/,
    );
    expect(stdout.match(/URI:/g)).toHaveLength(1);
    expect(decodePem(csr).map((b) => b.label)).toEqual(['CERTIFICATE REQUEST']);
    expect(decodePem(privateKey).map((b) => b.label)).toEqual(['PRIVATE KEY']);
    const key = createPrivateKey(privateKey);
    expect(key.asymmetricKeyDetails?.namedCurve).toBe('prime256v1');
    const parsed = parseCsr(csr);
    expect(parsed.emptySubject).toBe(true);
    expect(parsed.sanCritical).toBe(true);
    expect(parsed.uriSans).toEqual([DEMO.toString()]);
  });

  it('uses a fresh key for every request', () => {
    expect(createCsr(DEMO).privateKey).not.toBe(createCsr(DEMO).privateKey);
  });
});

describe('parseCsr and LocalCa.signCsr refuse bad requests', () => {
  const ca = LocalCa.create();

  it('accepts an openssl-made P-256 CSR', async () => {
    const csr = await opensslCsr(EC, [`subjectAltName=critical,URI:${DEMO}`]);
    expect(ca.signCsr(csr)).toHaveLength(2);
  });

  it('accepts a P-384 CSR and issues a certificate openssl verifies', async () => {
    const csr = await opensslCsr(
      ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-384'],
      [`subjectAltName=critical,URI:${DEMO}`],
    );
    expect(parseCsr(csr).curve).toBe('P-384');
    const [leaf, roots] = ca.signCsr(csr);
    const res = await openssl(['verify', '-CAfile', '{dir}/root.pem', '{dir}/leaf.pem'], {
      'root.pem': roots!,
      'leaf.pem': leaf!,
    });
    expect(res.stdout).toMatch(/OK/);
  });

  it('refuses an RSA CSR', async () => {
    const csr = await opensslCsr(['-newkey', 'rsa:2048'], [`subjectAltName=URI:${DEMO}`]);
    expect(codeOf(() => ca.signCsr(csr))).toBe('ERR_SPIFFE_CSR_KEY_UNSUPPORTED');
  });

  it('refuses a CSR whose signature does not verify', () => {
    const { csr } = createCsr(DEMO);
    const der = Buffer.from(decodePem(csr)[0]!.der);
    der[der.length - 3]! ^= 0x01;
    expect(codeOf(() => ca.signCsr(encodePem(der, 'CERTIFICATE REQUEST')))).toBe(
      'ERR_SPIFFE_CSR_SIGNATURE_INVALID',
    );
  });

  it('refuses a CSR with two URI SANs', async () => {
    const csr = await opensslCsr(EC, [
      `subjectAltName=critical,URI:${DEMO},URI:spiffe://cluster.local/ns/a/sa/b`,
    ]);
    expect(codeOf(() => ca.signCsr(csr))).toBe('ERR_SPIFFE_CSR_IDENTITY_REJECTED');
  });

  it('refuses a CSR whose URI SAN is not a SPIFFE ID', async () => {
    const csr = await opensslCsr(EC, ['subjectAltName=URI:https://cluster.local/ns/a/sa/b']);
    expect(codeOf(() => ca.signCsr(csr))).toBe('ERR_SPIFFE_CSR_IDENTITY_REJECTED');
  });

  it('refuses a CSR without a SAN', async () => {
    const csr = await opensslCsr(EC, []);
    expect(codeOf(() => ca.signCsr(csr))).toBe('ERR_SPIFFE_CSR_IDENTITY_REJECTED');
  });

  it('refuses a CSR for another trust domain', () => {
    const { csr } = createCsr('spiffe://evil.example/ns/default/sa/demo');
    expect(codeOf(() => ca.signCsr(csr))).toBe('ERR_SPIFFE_CSR_IDENTITY_REJECTED');
  });

  it('refuses a CSR for another identity than the authorized one', () => {
    const { csr } = createCsr(DEMO);
    const other = SpiffeId.parse('spiffe://cluster.local/ns/default/sa/other');
    expect(codeOf(() => ca.signCsr(csr, { identity: other }))).toBe(
      'ERR_SPIFFE_CSR_IDENTITY_REJECTED',
    );
  });

  it.each([
    ['not PEM at all', 'ERR_SPIFFE_PEM_INVALID'],
    [
      '-----BEGIN CERTIFICATE REQUEST-----\nAAAA\n-----END CERTIFICATE REQUEST-----\n',
      'ERR_SPIFFE_CSR_INVALID',
    ],
    ['-----BEGIN CERTIFICATE REQUEST-----\nMIIB', 'ERR_SPIFFE_PEM_INVALID'],
  ])('refuses malformed CSR %j with %s', (input, code) => {
    expect(codeOf(() => parseCsr(input))).toBe(code);
  });
});
