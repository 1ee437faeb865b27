import { execFileSync } from 'node:child_process';
import { X509Certificate } from 'node:crypto';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { SpiffeId, type WorkloadCertificate } from '@mesh/spiffe';

/**
 * A throw-away PKI made with the `openssl` CLI (an independent implementation from ours):
 * root -> intermediate -> leaves with SPIFFE URI SANs, like Istio's CA chain.
 */
export class TestPki {
  readonly dir: string;
  readonly rootPem: string;
  readonly intermediatePem: string;
  #serial = 1;

  constructor(name = 'pki') {
    this.dir = mkdtempSync(join(tmpdir(), `hbone-${name}-`));
    const d = this.dir;
    mkdirSync(join(d, 'new'));
    writeFileSync(join(d, 'index.txt'), '');
    writeFileSync(
      join(d, 'ca.cnf'),
      [
        '[ca]',
        'default_ca = test',
        '[test]',
        `database = ${join(d, 'index.txt')}`,
        `new_certs_dir = ${join(d, 'new')}`,
        'default_md = sha256',
        'policy = any',
        'unique_subject = no',
        `serial = ${join(d, 'serial')}`,
        'copy_extensions = none',
        '[any]',
        'organizationName = optional',
        'commonName = optional',
      ].join('\n'),
    );
    this.#key('root.key');
    openssl(
      d,
      'req',
      '-x509',
      '-new',
      '-key',
      'root.key',
      '-subj',
      '/O=mesh-test/CN=root',
      '-days',
      '3650',
      '-addext',
      'basicConstraints=critical,CA:TRUE',
      '-addext',
      'keyUsage=critical,keyCertSign,cRLSign',
      '-out',
      'root.pem',
    );
    this.#key('int.key');
    openssl(
      d,
      'req',
      '-new',
      '-key',
      'int.key',
      '-subj',
      '/O=mesh-test/CN=intermediate',
      '-out',
      'int.csr',
    );
    writeFileSync(
      join(d, 'int.ext'),
      'basicConstraints=critical,CA:TRUE,pathlen:0\nkeyUsage=critical,keyCertSign,cRLSign\n',
    );
    this.#sign('int.csr', 'int.pem', 'int.ext', 'root', '-days', '3650');
    this.rootPem = readFileSync(join(d, 'root.pem'), 'utf8');
    this.intermediatePem = readFileSync(join(d, 'int.pem'), 'utf8');
  }

  /**
   * Issues a leaf. `uri` null omits the SPIFFE SAN; `expired` makes it valid only in 2020;
   * `dns` adds a DNS SAN.
   */
  issue(
    uri: string | null,
    opts: { expired?: boolean; dns?: string; identity?: string } = {},
  ): WorkloadCertificate {
    const n = this.#serial++;
    const name = `leaf${n}`;
    this.#key(`${name}.key`);
    openssl(
      this.dir,
      'req',
      '-new',
      '-key',
      `${name}.key`,
      '-subj',
      '/O=mesh-test',
      '-out',
      `${name}.csr`,
    );
    const sans = [uri ? `URI:${uri}` : '', opts.dns ? `DNS:${opts.dns}` : ''].filter(Boolean);
    writeFileSync(
      join(this.dir, `${name}.ext`),
      [
        'basicConstraints=critical,CA:FALSE',
        'keyUsage=critical,digitalSignature,keyEncipherment',
        'extendedKeyUsage=serverAuth,clientAuth',
        sans.length ? `subjectAltName=critical,${sans.join(',')}` : '',
      ].join('\n'),
    );
    const validity = opts.expired
      ? ['-startdate', '20200101000000Z', '-enddate', '20200102000000Z']
      : ['-days', '2'];
    this.#sign(`${name}.csr`, `${name}.pem`, `${name}.ext`, 'int', ...validity);
    const leaf = readFileSync(join(this.dir, `${name}.pem`), 'utf8');
    const x509 = new X509Certificate(leaf);
    return {
      identity: SpiffeId.parse(opts.identity ?? uri ?? 'spiffe://none.invalid/none'),
      privateKey: readFileSync(join(this.dir, `${name}.key`), 'utf8'),
      leaf,
      intermediates: [this.intermediatePem],
      roots: [this.rootPem],
      notBefore: new Date(x509.validFrom),
      notAfter: new Date(x509.validTo),
      serialNumber: x509.serialNumber.toLowerCase(),
    };
  }

  /** Writes a certificate's parts to files (for openssl s_client / stunnel). */
  writeFiles(cert: WorkloadCertificate, name: string): { key: string; chain: string; ca: string } {
    const key = join(this.dir, `${name}.out.key`);
    const chain = join(this.dir, `${name}.out.chain.pem`);
    const ca = join(this.dir, `${name}.out.ca.pem`);
    writeFileSync(key, cert.privateKey);
    writeFileSync(chain, [cert.leaf, ...cert.intermediates].join(''));
    writeFileSync(ca, cert.roots.join(''));
    return { key, chain, ca };
  }

  dispose(): void {
    rmSync(this.dir, { recursive: true, force: true });
  }

  #key(file: string): void {
    openssl(
      this.dir,
      'genpkey',
      '-algorithm',
      'EC',
      '-pkeyopt',
      'ec_paramgen_curve:P-256',
      '-out',
      file,
    );
  }

  #sign(
    csr: string,
    out: string,
    ext: string,
    issuer: 'root' | 'int',
    ...validity: string[]
  ): void {
    openssl(
      this.dir,
      'ca',
      '-batch',
      '-config',
      'ca.cnf',
      '-notext',
      '-in',
      csr,
      '-out',
      out,
      '-extfile',
      ext,
      '-cert',
      `${issuer}.pem`,
      '-keyfile',
      `${issuer}.key`,
      '-rand_serial',
      ...validity,
    );
  }
}

function openssl(cwd: string, ...args: string[]): void {
  execFileSync('openssl', args, { cwd, stdio: ['ignore', 'ignore', 'pipe'] });
}

export const TD = 'cluster.local';
export const id = (ns: string, sa: string, td = TD) => `spiffe://${td}/ns/${ns}/sa/${sa}`;
