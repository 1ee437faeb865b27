import { createPrivateKey, generateKeyPairSync, type KeyObject, randomBytes } from 'node:crypto';
import { promises as fs } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { AsnConvert } from '@peculiar/asn1-schema';
import {
  Certificate as AsnCertificate,
  AttributeTypeAndValue,
  AttributeValue,
  AuthorityKeyIdentifier,
  BasicConstraints,
  ExtendedKeyUsage,
  Extensions,
  GeneralName,
  KeyIdentifier,
  KeyUsage,
  Name,
  RelativeDistinguishedName,
  SubjectAlternativeName,
  SubjectKeyIdentifier,
  SubjectPublicKeyInfo,
  TBSCertificate,
  Validity,
  Version,
} from '@peculiar/asn1-x509';
import type { WorkloadCertificate } from './certificate.js';
import { createCsr, parseCsr } from './csr.js';
import { channels } from './diagnostics.js';
import { SpiffeError } from './errors.js';
import type { CertificateIssuer, IssueOptions } from './issuer.js';
import { encodePem } from './pem.js';
import { assertTrustDomain, SpiffeId } from './spiffe-id.js';
import { TrustBundle, verifyChain } from './svid.js';
import { assembleWorkloadCertificate } from './workload-certificate.js';
import {
  extension,
  keyIdentifier,
  keyUsageFlags,
  OID,
  type ParsedCertificate,
  parseCertificates,
  type SigningAlgorithm,
  serialHex,
  signCertificate,
  signingAlgorithmFor,
} from './x509.js';

/** File names of Istio's plug-in CA layout (`cacerts` secret). */
export const CA_FILES = {
  caCert: 'ca-cert.pem',
  caKey: 'ca-key.pem',
  rootCert: 'root-cert.pem',
  certChain: 'cert-chain.pem',
} as const;

export interface LocalCaOptions {
  /** Trust domain whose SPIFFE IDs this CA signs. Default `cluster.local`. */
  trustDomain?: string;
  /** Lifetime of issued certificates when a request names none. Default 86 400 s (24 h). */
  defaultTtlSeconds?: number;
  /** Longest lifetime a request may ask for. Default 7 776 000 s (90 days, istiod's default). */
  maxTtlSeconds?: number;
  /**
   * How far issued certificates' notBefore is set into the past, tolerating clock skew
   * between peers. Default min(60 s, ttl / 10) so short test TTLs keep their 50 % refresh point.
   */
  backdateSeconds?: number;
  /** Lifetime of a root created by {@link LocalCa.open} or {@link LocalCa.create}. Default 10 years. */
  rootTtlSeconds?: number;
}

export interface OpenLocalCaOptions extends LocalCaOptions {
  signal?: AbortSignal;
  /** How long to wait for another process that is creating the CA in the same directory. Default 5000 ms. */
  initWaitMs?: number;
}

/** PEM material of a CA, in Istio's plug-in layout. */
export interface CaMaterial {
  /** The signing certificate (root or intermediate). */
  caCert: string;
  /** Its private key (PKCS#8, SEC1 or PKCS#1 PEM). */
  caKey: string;
  /** The trust anchors; may hold several roots (e.g. during root rotation). */
  rootCert: string;
  /** The chain from `caCert` up to (and optionally including) the root. Default `caCert`. */
  certChain?: string;
}

export interface SignCsrOptions {
  /** Requested lifetime; default {@link LocalCaOptions.defaultTtlSeconds}. */
  ttlSeconds?: number;
  /** When set, the CSR must name exactly this identity (the caller's authenticated identity). */
  identity?: SpiffeId;
}

const DAY = 86_400;

/**
 * An embedded certificate authority: signs workload CSRs into X.509-SVIDs the way istiod
 * does, from Istio's plug-in CA files or a self-signed ECDSA P-256 root it creates.
 */
export class LocalCa implements CertificateIssuer {
  readonly trustDomain: string;
  /** The certificate that signs workload certificates. */
  readonly caCertificate: ParsedCertificate;
  /** Certificates between `caCertificate` (included, unless it is a root) and the roots. */
  readonly intermediates: readonly ParsedCertificate[];
  readonly trustBundle: TrustBundle;
  readonly defaultTtlSeconds: number;
  readonly maxTtlSeconds: number;
  readonly #key: KeyObject;
  readonly #alg: SigningAlgorithm;
  readonly #backdate: number | undefined;
  readonly #issuerName: Name;
  readonly #authorityKeyId: Buffer;
  readonly #tail: readonly string[];
  readonly #intermediatePems: readonly string[];
  readonly #rootPems: readonly string[];

  private constructor(material: CaMaterial, options: LocalCaOptions) {
    this.trustDomain = options.trustDomain ?? 'cluster.local';
    assertTrustDomain(this.trustDomain);
    this.defaultTtlSeconds = positiveSeconds(options.defaultTtlSeconds ?? DAY, 'defaultTtlSeconds');
    this.maxTtlSeconds = positiveSeconds(options.maxTtlSeconds ?? 90 * DAY, 'maxTtlSeconds');
    this.#backdate =
      options.backdateSeconds === undefined
        ? undefined
        : nonNegativeSeconds(options.backdateSeconds, 'backdateSeconds');

    const invalid = (message: string, cause?: unknown) =>
      new SpiffeError('ERR_SPIFFE_CA_DIR_INVALID', message, cause ? { cause } : undefined);
    const caCerts = parseCertificates(material.caCert);
    if (caCerts.length !== 1)
      throw invalid(`ca-cert must hold one certificate, not ${caCerts.length}`);
    const caCert = caCerts[0]!;
    const roots = parseCertificates(material.rootCert);
    const chain = material.certChain ? parseCertificates(material.certChain) : [caCert];
    let key: KeyObject;
    try {
      key = createPrivateKey({ key: material.caKey, format: 'pem' });
    } catch (cause) {
      throw new SpiffeError('ERR_SPIFFE_KEY_INVALID', 'CA key is not a valid PEM private key', {
        cause,
      });
    }
    this.#alg = signingAlgorithmFor(key);
    if (!caCert.x509.checkPrivateKey(key))
      throw invalid('CA key does not match the CA certificate');
    if (!caCert.isCa) throw invalid('CA certificate is not a CA (basicConstraints cA=false)');
    if (caCert.keyUsage && !caCert.keyUsage.has('keyCertSign'))
      throw invalid('CA certificate lacks keyUsage keyCertSign');

    this.#key = key;
    this.trustBundle = new TrustBundle(roots);
    // Intermediates: what cert-chain.pem holds beyond the roots, starting with ca-cert itself.
    const intermediates = chain.filter((c) => !this.trustBundle.has(c));
    if (!this.trustBundle.has(caCert) && !intermediates.some((c) => c.equals(caCert))) {
      intermediates.unshift(caCert);
    }
    this.intermediates = Object.freeze(intermediates);
    this.caCertificate = caCert;
    const asn = AsnConvert.parse(caCert.der, AsnCertificate);
    this.#issuerName = asn.tbsCertificate.subject;
    this.#authorityKeyId = caCert.subjectKeyId
      ? Buffer.from(caCert.subjectKeyId, 'hex')
      : keyIdentifier(caCert.publicKey.export({ format: 'der', type: 'spki' }));
    this.#intermediatePems = Object.freeze(this.intermediates.map((c) => c.pem));
    this.#rootPems = Object.freeze(this.trustBundle.pems);
    this.#tail = Object.freeze([...this.#intermediatePems, this.trustBundle.toPem()]);

    // Prove the material is coherent now rather than on the first signature.
    const probe = parseCertificates(
      this.#signLeaf(
        SpiffeId.fromSegments(this.trustDomain, 'local-ca-self-check'),
        generateKeyPairSync('ec', { namedCurve: 'prime256v1' }).publicKey.export({
          format: 'der',
          type: 'spki',
        }),
        60,
      ).der,
    )[0]!;
    // At the latest notBefore in the chain: a CA made seconds ago by another tool must load.
    const at = new Date(
      Math.max(Date.now(), ...[caCert, ...this.intermediates].map((c) => c.notBefore.getTime())),
    );
    try {
      verifyChain([probe, ...this.intermediates], this.trustBundle, { at });
    } catch (cause) {
      throw invalid(`CA chain does not lead to root-cert: ${(cause as Error).message}`, cause);
    }
  }

  /** A CA from PEM material already in memory. */
  static fromMaterial(material: CaMaterial, options: LocalCaOptions = {}): LocalCa {
    return new LocalCa(material, options);
  }

  /** A new in-memory CA with a self-signed ECDSA P-256 root. */
  static create(options: LocalCaOptions = {}): LocalCa {
    return new LocalCa(createRootMaterial(options), options);
  }

  /**
   * Opens Istio's plug-in CA directory (`ca-cert.pem`, `ca-key.pem`, `root-cert.pem`,
   * optional `cert-chain.pem`), creating a self-signed ECDSA P-256 root there when the
   * directory is empty or missing. Several processes may open the same directory at once:
   * exactly one creates the root, the others load it, so all their certificates trust each
   * other.
   */
  static async open(dir: string, options: OpenLocalCaOptions = {}): Promise<LocalCa> {
    const { signal } = options;
    signal?.throwIfAborted();
    await fs.mkdir(dir, { recursive: true, mode: 0o700 });
    const deadline = Date.now() + (options.initWaitMs ?? 5000);
    for (;;) {
      signal?.throwIfAborted();
      const material = await readMaterial(dir);
      if (material.caCert && material.caKey && material.rootCert) {
        return new LocalCa(material as CaMaterial, options);
      }
      const present = Object.entries(material)
        .filter(([, v]) => v !== undefined)
        .map(([k]) => k);
      if (present.length === 0) {
        // Either we created the files, or another opener won the race: read again.
        await tryCreate(dir, options);
        continue;
      }
      // Another opener is creating the files (their key file appears first); wait for it.
      if (!material.caKey || Date.now() > deadline) {
        throw new SpiffeError(
          'ERR_SPIFFE_CA_DIR_INVALID',
          `CA directory ${dir} is partly populated (has ${present.join(', ') || 'nothing'}); expected ${CA_FILES.caCert}, ${CA_FILES.caKey} and ${CA_FILES.rootCert}, or an empty directory`,
        );
      }
      await sleep(20);
    }
  }

  /** Root certificates as PEM, one per root. */
  get roots(): string[] {
    return this.trustBundle.pems;
  }

  /**
   * Signs a PKCS#10 CSR the way istiod does and returns its `cert_chain`: the leaf, then the
   * intermediates, then the root bundle (one element, possibly several roots).
   * Throws `ERR_SPIFFE_CSR_*` for a CSR that is malformed, not ECDSA, badly signed, or not
   * for exactly one SPIFFE ID of this trust domain (and `identity`, when given).
   */
  signCsr(csr: string | Uint8Array, options: SignCsrOptions = {}): string[] {
    return [this.#signCsr(csr, options).pem, ...this.#tail];
  }

  #signCsr(csr: string | Uint8Array, options: SignCsrOptions): SignedLeaf {
    const ttl = this.#ttl(options.ttlSeconds);
    const parsed = parseCsr(csr);
    if (parsed.uriSans.length !== 1) {
      throw new SpiffeError(
        'ERR_SPIFFE_CSR_IDENTITY_REJECTED',
        `CSR must request exactly one URI SAN, it requests ${parsed.uriSans.length}`,
      );
    }
    const id = SpiffeId.tryParse(parsed.uriSans[0]!);
    if (!id) {
      throw new SpiffeError(
        'ERR_SPIFFE_CSR_IDENTITY_REJECTED',
        `CSR URI SAN ${JSON.stringify(parsed.uriSans[0])} is not a SPIFFE ID`,
      );
    }
    if (!id.isMemberOf(this.trustDomain)) {
      throw new SpiffeError(
        'ERR_SPIFFE_CSR_IDENTITY_REJECTED',
        `CSR identity ${id} is outside trust domain ${this.trustDomain}`,
      );
    }
    if (options.identity && !id.equals(options.identity)) {
      throw new SpiffeError(
        'ERR_SPIFFE_CSR_IDENTITY_REJECTED',
        `CSR identity ${id} is not the authorized identity ${options.identity}`,
      );
    }
    const leaf = this.#signLeaf(id, parsed.subjectPublicKeyInfo, ttl);
    if (channels.issued.hasSubscribers) {
      channels.issued.publish({
        identity: id.toString(),
        serialNumber: leaf.serialNumber,
        notAfter: leaf.notAfter,
      });
    }
    return leaf;
  }

  /** A fresh key, CSR and signature for `identity`, without going through PEM parsing twice. */
  async issue(identity: SpiffeId, options: IssueOptions = {}): Promise<WorkloadCertificate> {
    options.signal?.throwIfAborted();
    return this.issueSync(identity, options);
  }

  /** Synchronous {@link LocalCa.issue}. */
  issueSync(identity: SpiffeId, options: { ttlSeconds?: number } = {}): WorkloadCertificate {
    const { csr, privateKey } = createCsr(identity);
    const leaf = this.#signCsr(csr, { ttlSeconds: options.ttlSeconds, identity });
    // We just signed it: no need to re-parse and re-verify what istiod's clients must check.
    return assembleWorkloadCertificate(
      identity,
      privateKey,
      leaf,
      this.#intermediatePems,
      this.#rootPems,
    );
  }

  #ttl(requested: number | undefined): number {
    if (requested === undefined) return this.defaultTtlSeconds;
    if (!Number.isFinite(requested) || requested <= 0) {
      throw new SpiffeError(
        'ERR_SPIFFE_TTL_INVALID',
        `requested TTL ${requested} s is not a positive number of seconds`,
      );
    }
    if (requested > this.maxTtlSeconds) {
      throw new SpiffeError(
        'ERR_SPIFFE_TTL_INVALID',
        `requested TTL ${requested} s exceeds the maximum of ${this.maxTtlSeconds} s`,
      );
    }
    return requested;
  }

  /**
   * A TLS serving certificate (e.g. for {@link IstioCaServer}) with DNS and IP SANs instead of
   * a SPIFFE ID, like istiod's own serving certificate. Returns the key and `leaf + intermediates`.
   */
  issueServingCertificate(options: {
    dnsNames?: readonly string[];
    ipAddresses?: readonly string[];
    ttlSeconds?: number;
  }): { privateKey: string; certChain: string; leaf: ParsedCertificate } {
    const names = [
      ...(options.dnsNames ?? []).map((dNSName) => new GeneralName({ dNSName })),
      ...(options.ipAddresses ?? []).map((iPAddress) => new GeneralName({ iPAddress })),
    ];
    if (names.length === 0) {
      throw new SpiffeError(
        'ERR_SPIFFE_INVALID_ARGUMENT',
        'a serving certificate needs a DNS name or IP',
      );
    }
    const { publicKey, privateKey } = generateKeyPairSync('ec', { namedCurve: 'prime256v1' });
    const leaf = parseCertificates(
      this.#signLeaf(
        names,
        publicKey.export({ format: 'der', type: 'spki' }),
        this.#ttl(options.ttlSeconds),
      ).der,
    )[0]!;
    return {
      privateKey: privateKey.export({ format: 'pem', type: 'pkcs8' }) as string,
      certChain: [leaf.pem, ...this.#intermediatePems].join(''),
      leaf,
    };
  }

  #signLeaf(
    subject: SpiffeId | readonly GeneralName[],
    spki: Uint8Array,
    ttlSeconds: number,
  ): SignedLeaf {
    const sanNames =
      subject instanceof SpiffeId
        ? [new GeneralName({ uniformResourceIdentifier: subject.toString() })]
        : [...subject];
    const now = Date.now();
    const backdate = this.#backdate ?? Math.min(60, Math.floor(ttlSeconds / 10));
    // Whole seconds, as X.509 time encodes them.
    const notBefore = new Date(Math.floor((now - backdate * 1000) / 1000) * 1000);
    // A leaf never outlives the CA that signed it.
    const notAfter = new Date(
      Math.floor(Math.min(now + ttlSeconds * 1000, this.caCertificate.notAfter.getTime()) / 1000) *
        1000,
    );
    const serial = serialNumber();
    const tbs = new TBSCertificate({
      version: Version.v3,
      serialNumber: serial,
      issuer: this.#issuerName,
      subject: new Name(),
      validity: new Validity({ notBefore, notAfter }),
      subjectPublicKeyInfo: AsnConvert.parse(spki, SubjectPublicKeyInfo),
      extensions: new Extensions([
        extension(
          OID.keyUsage,
          true,
          new KeyUsage(keyUsageFlags(['digitalSignature', 'keyEncipherment'])),
        ),
        extension(OID.extKeyUsage, false, new ExtendedKeyUsage([OID.serverAuth, OID.clientAuth])),
        extension(OID.basicConstraints, true, new BasicConstraints({ cA: false })),
        extension(
          OID.authorityKeyId,
          false,
          new AuthorityKeyIdentifier({ keyIdentifier: new KeyIdentifier(this.#authorityKeyId) }),
        ),
        // Critical because the subject is empty (RFC 5280 §4.2.1.6).
        extension(OID.subjectAltName, true, new SubjectAlternativeName(sanNames)),
      ]),
    });
    const der = signCertificate(tbs, this.#key, this.#alg);
    // Not re-parsed: what we just encoded is known, and parsing would double the cost.
    return {
      der,
      pem: encodePem(der, 'CERTIFICATE'),
      serialNumber: serialHex(serial),
      notBefore,
      notAfter,
    };
  }
}

/** A certificate this CA just signed, with the fields it already knows. */
interface SignedLeaf {
  readonly der: Buffer;
  readonly pem: string;
  readonly serialNumber: string;
  readonly notBefore: Date;
  readonly notAfter: Date;
}

function positiveSeconds(value: number, name: string): number {
  if (typeof value !== 'number' || !Number.isFinite(value) || value <= 0) {
    throw new SpiffeError('ERR_SPIFFE_INVALID_ARGUMENT', `${name} must be a positive number`);
  }
  return value;
}

function nonNegativeSeconds(value: number, name: string): number {
  if (typeof value !== 'number' || !Number.isFinite(value) || value < 0) {
    throw new SpiffeError('ERR_SPIFFE_INVALID_ARGUMENT', `${name} must be zero or positive`);
  }
  return value;
}

/** 126 random bits, positive and minimally encoded: unique across every CA sharing a root. */
function serialNumber(): ArrayBuffer {
  const bytes = randomBytes(16);
  bytes[0] = (bytes[0]! & 0x3f) | 0x40;
  return new Uint8Array(bytes).buffer;
}

/** Self-signed ECDSA P-256 root, subject `O=<trust domain>` as istiod's self-signed CA. */
export function createRootMaterial(options: LocalCaOptions = {}): CaMaterial {
  const trustDomain = options.trustDomain ?? 'cluster.local';
  assertTrustDomain(trustDomain);
  const ttl = positiveSeconds(options.rootTtlSeconds ?? 10 * 365 * DAY, 'rootTtlSeconds');
  const { publicKey, privateKey } = generateKeyPairSync('ec', { namedCurve: 'prime256v1' });
  const spki = publicKey.export({ format: 'der', type: 'spki' });
  const name = new Name([
    new RelativeDistinguishedName([
      new AttributeTypeAndValue({
        type: OID.organization,
        value: new AttributeValue({ utf8String: trustDomain }),
      }),
    ]),
  ]);
  const now = Date.now();
  const ski = keyIdentifier(spki);
  const tbs = new TBSCertificate({
    version: Version.v3,
    serialNumber: serialNumber(),
    issuer: name,
    subject: name,
    validity: new Validity({
      notBefore: new Date(now - 60_000),
      notAfter: new Date(now + ttl * 1000),
    }),
    subjectPublicKeyInfo: AsnConvert.parse(spki, SubjectPublicKeyInfo),
    extensions: new Extensions([
      extension(
        OID.keyUsage,
        true,
        new KeyUsage(keyUsageFlags(['digitalSignature', 'keyCertSign', 'cRLSign'])),
      ),
      extension(OID.basicConstraints, true, new BasicConstraints({ cA: true })),
      extension(OID.subjectKeyId, false, new SubjectKeyIdentifier(ski)),
    ]),
  });
  const der = signCertificate(tbs, privateKey, signingAlgorithmFor(privateKey));
  const cert = encodePem(der, 'CERTIFICATE');
  return {
    caCert: cert,
    caKey: privateKey.export({ format: 'pem', type: 'pkcs8' }) as string,
    rootCert: cert,
    certChain: cert,
  };
}

async function readMaterial(dir: string): Promise<Partial<CaMaterial>> {
  const read = async (name: string): Promise<string | undefined> => {
    try {
      return await fs.readFile(join(dir, name), 'utf8');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
      throw new SpiffeError('ERR_SPIFFE_CA_DIR_INVALID', `cannot read ${join(dir, name)}`, {
        cause: err,
      });
    }
  };
  const [caCert, caKey, rootCert, certChain] = await Promise.all([
    read(CA_FILES.caCert),
    read(CA_FILES.caKey),
    read(CA_FILES.rootCert),
    read(CA_FILES.certChain),
  ]);
  // An empty file is what a crashed writer leaves; treat it as absent so the wait times out.
  const nonEmpty = (s: string | undefined) => (s && s.trim() !== '' ? s : undefined);
  return {
    caCert: nonEmpty(caCert),
    caKey: nonEmpty(caKey),
    rootCert: nonEmpty(rootCert),
    certChain: nonEmpty(certChain),
  };
}

/**
 * Creates the root files in `dir`. Files are written under temporary names and linked into
 * place; `link` fails if the target exists, so of several concurrent openers exactly one
 * wins the key file and the rest load what it wrote. Returns false when another opener won.
 */
async function tryCreate(dir: string, options: LocalCaOptions): Promise<boolean> {
  const material = createRootMaterial(options);
  const tag = `.tmp-${process.pid}-${randomBytes(6).toString('hex')}`;
  const files: [string, string, number][] = [
    [CA_FILES.caKey, material.caKey, 0o600],
    [CA_FILES.caCert, material.caCert, 0o644],
    [CA_FILES.certChain, material.certChain!, 0o644],
    [CA_FILES.rootCert, material.rootCert, 0o644],
  ];
  const temps: string[] = [];
  try {
    for (const [name, content, mode] of files) {
      const tmp = join(dir, `${name}${tag}`);
      temps.push(tmp);
      await fs.writeFile(tmp, content, { mode, flag: 'wx' });
      await fs.chmod(tmp, mode); // writeFile's mode is filtered by the umask
    }
    try {
      await fs.link(temps[0]!, join(dir, CA_FILES.caKey));
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'EEXIST') return false;
      throw err;
    }
    for (let i = 1; i < files.length; i++) await fs.rename(temps[i]!, join(dir, files[i]![0]));
    return true;
  } catch (err) {
    if (err instanceof SpiffeError) throw err;
    throw new SpiffeError('ERR_SPIFFE_CA_DIR_INVALID', `cannot create CA files in ${dir}`, {
      cause: err,
    });
  } finally {
    await Promise.all(temps.map((t) => fs.rm(t, { force: true })));
  }
}
