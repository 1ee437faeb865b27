import { execFile } from 'node:child_process';
import { readFile, rm, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { connect, createServer, type TLSSocket } from 'node:tls';
import { promisify } from 'node:util';
import {
  CA_FILES,
  createCsr,
  LocalCa,
  parseCertificates,
  SpiffeError,
  SpiffeId,
  TrustBundle,
  X509Svid,
} from '@mesh/spiffe';
import { afterAll, describe, expect, it } from 'vitest';
import { openssl, tempDir } from './helpers/openssl.js';

const exec = promisify(execFile);
const DEMO = SpiffeId.parse('spiffe://cluster.local/ns/default/sa/demo');
const dirs: string[] = [];
async function freshDir(): Promise<string> {
  const dir = await tempDir('spiffe-ca-');
  dirs.push(dir);
  return dir;
}
afterAll(async () => {
  await Promise.all(dirs.map((d) => rm(d, { recursive: true, force: true })));
});

describe('LocalCa', () => {
  const ca = LocalCa.create();

  it('issues an immutable certificate carrying the identity, a fresh key and the root', async () => {
    const before = Date.now();
    const cert = await ca.issue(DEMO, { ttlSeconds: 3600 });
    expect(cert.identity.toString()).toBe(DEMO.toString());
    expect(Object.isFrozen(cert)).toBe(true);
    expect(Object.isFrozen(cert.roots)).toBe(true);
    expect(cert.privateKey).toMatch(/^-----BEGIN PRIVATE KEY-----/);
    expect(cert.roots).toEqual(ca.roots);
    expect(cert.intermediates).toEqual([]);
    expect(cert.notAfter.getTime() - before).toBeGreaterThan(3590_000);
    expect(cert.notAfter.getTime() - before).toBeLessThanOrEqual(3601_000);
    const svid = X509Svid.parse(cert.leaf);
    expect(svid.identity.equals(DEMO)).toBe(true);
    expect(svid.leaf.serialNumber).toBe(cert.serialNumber);
    expect(svid.verify(TrustBundle.from(cert.roots)).path).toHaveLength(2);
    const other = await ca.issue(DEMO, { ttlSeconds: 3600 });
    expect(other.privateKey).not.toBe(cert.privateKey);
  });

  it('issues chains that openssl verify accepts', async () => {
    const cert = await ca.issue(DEMO);
    const res = await openssl(['verify', '-CAfile', '{dir}/root.pem', '{dir}/leaf.pem'], {
      'root.pem': cert.roots.join(''),
      'leaf.pem': cert.leaf,
    });
    expect(res.stderr).toBe('');
    expect(res.stdout).toMatch(/leaf\.pem: OK/);
  });

  it('puts exactly one critical URI SAN, serverAuth+clientAuth and CA:FALSE in the leaf (openssl x509 -text)', async () => {
    const cert = await ca.issue(DEMO);
    const { stdout } = await openssl(['x509', '-in', '{dir}/leaf.pem', '-noout', '-text'], {
      'leaf.pem': cert.leaf,
    });
    expect(stdout).toMatch(
      /Subject Alternative Name: critical\s+URI:spiffe:\/\/cluster\.local\/ns\/default\/sa\/demo\n/,
    );
    expect(stdout.match(/URI:/g)).toHaveLength(1);
    expect(stdout).toMatch(
      /Extended Key Usage:\s*\n\s*TLS Web Server Authentication, TLS Web Client Authentication/,
    );
    expect(stdout).toMatch(/Basic Constraints: critical\s+CA:FALSE/);
    expect(stdout).toMatch(/Key Usage: critical\s+Digital Signature/);
    expect(stdout).toMatch(/Signature Algorithm: ecdsa-with-SHA256/);
  });

  it('gives every certificate a distinct serial number', async () => {
    const serials = new Set<string>();
    for (let i = 0; i < 100; i++) serials.add(ca.issueSync(DEMO, { ttlSeconds: 60 }).serialNumber);
    expect(serials.size).toBe(100);
  });

  it('honours the requested TTL and refuses one beyond the maximum', async () => {
    const small = LocalCa.create({ maxTtlSeconds: 600 });
    const cert = await small.issue(DEMO, { ttlSeconds: 5 });
    expect(cert.notAfter.getTime() - cert.notBefore.getTime()).toBe(5000);
    await expect(small.issue(DEMO, { ttlSeconds: 601 })).rejects.toMatchObject({
      code: 'ERR_SPIFFE_TTL_INVALID',
    });
    await expect(small.issue(DEMO, { ttlSeconds: -1 })).rejects.toMatchObject({
      code: 'ERR_SPIFFE_TTL_INVALID',
    });
  });

  it('signs a CSR into istiod-shaped cert_chain: leaf first, root bundle last', () => {
    const { csr } = createCsr(DEMO);
    const chain = ca.signCsr(csr, { ttlSeconds: 60 });
    expect(chain).toHaveLength(2);
    expect(parseCertificates(chain[0]!)[0]!.uriSans).toEqual([DEMO.toString()]);
    expect(chain[1]).toBe(ca.trustBundle.toPem());
  });

  it('serves mutual TLS between two workloads it issued for', async () => {
    const server = await ca.issue(SpiffeId.parse('spiffe://cluster.local/ns/a/sa/server'));
    const client = await ca.issue(SpiffeId.parse('spiffe://cluster.local/ns/b/sa/client'));
    const srv = createServer(
      {
        key: server.privateKey,
        cert: [server.leaf, ...server.intermediates].join(''),
        ca: server.roots.join(''),
        requestCert: true,
        rejectUnauthorized: true,
        minVersion: 'TLSv1.3',
      },
      (socket) => {
        const peer = socket.getPeerX509Certificate();
        socket.end(peer?.subjectAltName ?? 'none');
      },
    );
    await new Promise<void>((resolve) => srv.listen(0, '127.0.0.1', resolve));
    const port = (srv.address() as { port: number }).port;
    try {
      const socket: TLSSocket = connect({
        host: '127.0.0.1',
        port,
        key: client.privateKey,
        cert: client.leaf,
        ca: client.roots.join(''),
        checkServerIdentity: () => undefined,
      });
      let data = '';
      socket.setEncoding('utf8');
      socket.on('data', (d) => {
        data += d;
      });
      await new Promise<void>((resolve, reject) => {
        socket.on('end', resolve);
        socket.on('error', reject);
      });
      socket.destroy();
      expect(data).toBe('URI:spiffe://cluster.local/ns/b/sa/client');
    } finally {
      await new Promise((resolve) => srv.close(resolve));
    }
  });
});

describe('LocalCa.open', () => {
  it('creates a self-signed P-256 root in an empty directory, key files mode 0600', async () => {
    const dir = await freshDir();
    const ca = await LocalCa.open(dir);
    for (const name of Object.values(CA_FILES)) {
      expect((await stat(join(dir, name))).isFile()).toBe(true);
    }
    expect((await stat(join(dir, CA_FILES.caKey))).mode & 0o777).toBe(0o600);
    const root = parseCertificates(await readFile(join(dir, CA_FILES.rootCert), 'utf8'))[0]!;
    expect(root.isSelfSigned).toBe(true);
    expect(root.isCa).toBe(true);
    expect(root.publicKey.asymmetricKeyDetails?.namedCurve).toBe('prime256v1');
    expect(root.subject).toBe('O=cluster.local');
    expect(ca.trustBundle.roots[0]!.equals(root)).toBe(true);
  });

  it('loads the same root when reopened', async () => {
    const dir = await freshDir();
    const first = await LocalCa.open(dir);
    const second = await LocalCa.open(dir);
    expect(second.roots).toEqual(first.roots);
  });

  it('lets instances opened concurrently on one directory issue certificates that trust each other', async () => {
    const dir = await freshDir();
    const cas = await Promise.all(Array.from({ length: 6 }, () => LocalCa.open(dir)));
    const roots = new Set(cas.map((c) => c.roots.join('')));
    expect(roots.size).toBe(1);
    const certs = await Promise.all(cas.map((c) => c.issue(DEMO)));
    for (const cert of certs) {
      for (const other of cas) {
        expect(X509Svid.parse(cert.leaf).verify(other.trustBundle).identity.equals(DEMO)).toBe(
          true,
        );
      }
    }
  });

  it('lets separate processes share one directory', async () => {
    const dir = await freshDir();
    const script = `
      const { LocalCa } = await import('@mesh/spiffe');
      const ca = await LocalCa.open(${JSON.stringify(dir)});
      process.stdout.write(ca.roots.join(''));
    `;
    const runOne = () =>
      exec(
        process.execPath,
        ['--conditions=@mesh/source', '--import', 'tsx', '--input-type=module', '-e', script],
        { cwd: join(import.meta.dirname, '..'), encoding: 'utf8' },
      );
    const [a, b, c] = await Promise.all([runOne(), runOne(), runOne()]);
    expect(a.stdout).toMatch(/BEGIN CERTIFICATE/);
    expect(b.stdout).toBe(a.stdout);
    expect(c.stdout).toBe(a.stdout);
    const local = await LocalCa.open(dir);
    expect(local.roots.join('')).toBe(a.stdout);
  });

  it('loads an Istio plug-in CA with an intermediate made by openssl, and openssl verifies what it issues', async () => {
    const dir = await freshDir();
    const sh = `
      set -e
      cd ${dir}
      openssl req -x509 -newkey rsa:2048 -nodes -keyout root-key.pem -out root-cert.pem -days 30 \\
        -subj "/O=Istio/CN=Root CA" -addext "basicConstraints=critical,CA:true" \\
        -addext "keyUsage=critical,keyCertSign,cRLSign" 2>/dev/null
      openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout ca-key.pem -out ca.csr \\
        -subj "/O=Istio/CN=Intermediate CA" 2>/dev/null
      printf "basicConstraints=critical,CA:true,pathlen:0\\nkeyUsage=critical,keyCertSign,cRLSign,digitalSignature\\nsubjectKeyIdentifier=hash\\n" > ext.cnf
      openssl x509 -req -in ca.csr -CA root-cert.pem -CAkey root-key.pem -CAcreateserial -days 20 \\
        -extfile ext.cnf -out ca-cert.pem 2>/dev/null
      cat ca-cert.pem root-cert.pem > cert-chain.pem
      rm ca.csr ext.cnf root-key.pem root-cert.srl
    `;
    await exec('sh', ['-c', sh]);
    const ca = await LocalCa.open(dir);
    expect(ca.intermediates).toHaveLength(1);
    const cert = await ca.issue(DEMO);
    expect(cert.intermediates).toHaveLength(1);
    expect(cert.roots).toHaveLength(1);
    await writeFile(join(dir, 'leaf.pem'), cert.leaf);
    await writeFile(join(dir, 'inter.pem'), cert.intermediates.join(''));
    const res = await openssl([
      'verify',
      '-CAfile',
      join(dir, 'root-cert.pem'),
      '-untrusted',
      join(dir, 'inter.pem'),
      join(dir, 'leaf.pem'),
    ]);
    expect(res.stdout).toMatch(/leaf\.pem: OK/);
    const verified = X509Svid.parse([cert.leaf, ...cert.intermediates]).verify(
      TrustBundle.from(cert.roots),
    );
    expect(verified.path).toHaveLength(3);
  });

  it('rejects with the abort reason when the signal is aborted', async () => {
    const reason = new Error('stop');
    await expect(
      LocalCa.open(await freshDir(), { signal: AbortSignal.abort(reason) }),
    ).rejects.toBe(reason);
  });

  it.each([
    ['RSA 2048', 'rsa:2048', []],
    ['ECDSA P-384', 'ec', ['-pkeyopt', 'ec_paramgen_curve:P-384']],
  ])(
    'signs with a %s root key from openssl, and openssl verifies the result',
    async (_name, alg, opts) => {
      const dir = await freshDir();
      await exec('openssl', [
        'req',
        '-x509',
        '-newkey',
        alg,
        ...opts,
        '-nodes',
        '-keyout',
        join(dir, CA_FILES.caKey),
        '-out',
        join(dir, CA_FILES.caCert),
        '-days',
        '30',
        '-subj',
        '/O=cluster.local',
        '-addext',
        'basicConstraints=critical,CA:true',
        '-addext',
        'keyUsage=critical,keyCertSign,cRLSign',
      ]);
      await writeFile(join(dir, CA_FILES.rootCert), await readFile(join(dir, CA_FILES.caCert)));
      const ca = await LocalCa.open(dir);
      const cert = await ca.issue(DEMO);
      await writeFile(join(dir, 'leaf.pem'), cert.leaf);
      const res = await openssl([
        'verify',
        '-CAfile',
        join(dir, CA_FILES.rootCert),
        join(dir, 'leaf.pem'),
      ]);
      expect(res.stdout).toMatch(/leaf\.pem: OK/);
      expect(X509Svid.parse(cert.leaf).verify(ca.trustBundle).identity.equals(DEMO)).toBe(true);
    },
  );

  it('refuses a partly populated directory', async () => {
    const dir = await freshDir();
    const material = LocalCa.create();
    await writeFile(join(dir, CA_FILES.rootCert), material.roots[0]!);
    const err = await LocalCa.open(dir, { initWaitMs: 100 }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(SpiffeError);
    expect((err as SpiffeError).code).toBe('ERR_SPIFFE_CA_DIR_INVALID');
  });

  it('refuses a CA key of an unsupported type (wrong key type)', async () => {
    const dir = await freshDir();
    await exec('sh', [
      '-c',
      `cd ${dir} && openssl req -x509 -newkey ed25519 -nodes -keyout ca-key.pem -out ca-cert.pem -days 1 -subj /O=x -addext basicConstraints=critical,CA:true 2>/dev/null && cp ca-cert.pem root-cert.pem`,
    ]);
    await expect(LocalCa.open(dir)).rejects.toMatchObject({ code: 'ERR_SPIFFE_KEY_UNSUPPORTED' });
  });

  it('refuses a key that does not belong to the CA certificate', async () => {
    const dir = await freshDir();
    const a = await LocalCa.open(dir);
    const other = await LocalCa.open(await freshDir());
    expect(a).toBeDefined();
    await writeFile(
      join(dir, CA_FILES.caKey),
      await readFile(join(dirs.at(-1)!, CA_FILES.caKey), 'utf8'),
    );
    expect(other).toBeDefined();
    await expect(LocalCa.open(dir)).rejects.toMatchObject({ code: 'ERR_SPIFFE_CA_DIR_INVALID' });
  });
});
