/**
 * Test PKI with the `openssl` CLI: a P-256 root and leaf certificates carrying SPIFFE URI SANs,
 * shaped like Istio workload certificates (ECDSA P-256/SHA-256, URI SAN, server+client auth).
 * Stands in until `@mesh/spiffe`'s embedded CA is used by the scenarios directly.
 */

import { execFile } from 'node:child_process';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';

const run = promisify(execFile);

export interface PemFiles {
  /** Paths on disk (for stunnel4 and other CLI peers). */
  certPath: string;
  keyPath: string;
  /** The same material in memory (for Node TLS). */
  certPem: string;
  keyPem: string;
}

export interface TestPki {
  caPath: string;
  caPem: string;
  caKeyPath: string;
  /** One leaf per requested name, keyed by that name. */
  leaves: Record<string, PemFiles & { spiffeId: string }>;
}

export interface TestPkiOptions {
  /** Directory to write into (created). */
  dir: string;
  /** Leaf name → SPIFFE ID, e.g. `{ client: 'spiffe://cluster.local/ns/bench/sa/client' }`. */
  identities: Record<string, string>;
  /** Validity in days (default 2). */
  days?: number;
  signal?: AbortSignal;
}

async function openssl(args: string[], signal?: AbortSignal): Promise<void> {
  try {
    await run('openssl', args, { signal });
  } catch (err) {
    const e = err as Error & { stderr?: string };
    throw new Error(`openssl ${args[0]} failed: ${e.stderr?.trim() || e.message}`);
  }
}

/**
 * Create a root CA and one leaf per identity with `openssl`. The directory also follows
 * Istio's plug-in CA layout (`ca-cert.pem`, `ca-key.pem`, `root-cert.pem`, `cert-chain.pem`),
 * so an embedded CA pointed at it issues certificates under the same root.
 */
export async function createTestPki(options: TestPkiOptions): Promise<TestPki> {
  const { dir, signal } = options;
  const days = String(options.days ?? 2);
  await mkdir(dir, { recursive: true });
  const caKeyPath = join(dir, 'ca-key.pem');
  const caPath = join(dir, 'ca-cert.pem');
  const ec = ['-algorithm', 'EC', '-pkeyopt', 'ec_paramgen_curve:P-256'];
  await openssl(['genpkey', ...ec, '-out', caKeyPath], signal);
  await openssl(
    [
      'req',
      '-x509',
      '-new',
      '-key',
      caKeyPath,
      '-sha256',
      '-days',
      days,
      '-subj',
      '/O=mesh-bench/CN=mesh bench root',
      '-addext',
      'basicConstraints=critical,CA:TRUE',
      '-addext',
      'keyUsage=critical,keyCertSign,cRLSign',
      '-out',
      caPath,
    ],
    signal,
  );
  // Istio's plug-in CA layout, so a ztunnel's embedded CA can sign with the same root.
  const caPem = await readFile(caPath, 'utf8');
  await writeFile(join(dir, 'root-cert.pem'), caPem);
  await writeFile(join(dir, 'cert-chain.pem'), caPem);
  const leaves: TestPki['leaves'] = {};
  let serial = 1;
  for (const [name, spiffeId] of Object.entries(options.identities)) {
    const keyPath = join(dir, `${name}-key.pem`);
    const certPath = join(dir, `${name}-cert.pem`);
    const csrPath = join(dir, `${name}.csr`);
    const extPath = join(dir, `${name}.ext`);
    await openssl(['genpkey', ...ec, '-out', keyPath], signal);
    await openssl(
      ['req', '-new', '-key', keyPath, '-subj', '/O=mesh-bench', '-out', csrPath],
      signal,
    );
    await writeFile(
      extPath,
      [
        `subjectAltName=critical,URI:${spiffeId}`,
        'keyUsage=critical,digitalSignature,keyEncipherment',
        'extendedKeyUsage=serverAuth,clientAuth',
        'basicConstraints=critical,CA:FALSE',
        '',
      ].join('\n'),
    );
    await openssl(
      [
        'x509',
        '-req',
        '-in',
        csrPath,
        '-CA',
        caPath,
        '-CAkey',
        caKeyPath,
        '-sha256',
        '-days',
        days,
        '-set_serial',
        String(serial++),
        '-extfile',
        extPath,
        '-out',
        certPath,
      ],
      signal,
    );
    leaves[name] = {
      spiffeId,
      certPath,
      keyPath,
      certPem: await readFile(certPath, 'utf8'),
      keyPem: await readFile(keyPath, 'utf8'),
    };
  }
  return { caPath, caPem, caKeyPath, leaves };
}

/** The client and server workload identities the e2e scenarios use. */
export const BENCH_IDENTITIES = {
  client: 'spiffe://cluster.local/ns/bench/sa/client',
  server: 'spiffe://cluster.local/ns/bench/sa/server',
} as const;

/**
 * A root plus `client` and `server` leaves ({@link BENCH_IDENTITIES}); `files(name)` gives the
 * paths a CLI peer such as stunnel4 needs (certificate, key, trust anchors).
 */
export async function createClientServerPki(
  dir: string,
  signal?: AbortSignal,
): Promise<
  TestPki & {
    files(name: 'client' | 'server'): { certPath: string; keyPath: string; caPath: string };
  }
> {
  const pki = await createTestPki({ dir, identities: { ...BENCH_IDENTITIES }, signal });
  return {
    ...pki,
    files: (name) => ({
      certPath: pki.leaves[name]!.certPath,
      keyPath: pki.leaves[name]!.keyPath,
      caPath: pki.caPath,
    }),
  };
}
