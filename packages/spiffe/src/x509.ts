import { createHash, type KeyObject, sign, X509Certificate } from 'node:crypto';
import { AsnConvert, OctetString } from '@peculiar/asn1-schema';
import {
  AlgorithmIdentifier,
  AuthorityKeyIdentifier,
  BasicConstraints,
  Certificate,
  ExtendedKeyUsage,
  Extension,
  GeneralName,
  KeyUsage,
  KeyUsageFlags,
  SubjectAlternativeName,
  SubjectKeyIdentifier,
  type TBSCertificate,
} from '@peculiar/asn1-x509';
import { SpiffeError } from './errors.js';
import { decodePem, encodePem } from './pem.js';

export const OID = {
  ecPublicKey: '1.2.840.10045.2.1',
  p256: '1.2.840.10045.3.1.7',
  p384: '1.3.132.0.34',
  rsaEncryption: '1.2.840.113549.1.1.1',
  ecdsaWithSha256: '1.2.840.10045.4.3.2',
  ecdsaWithSha384: '1.2.840.10045.4.3.3',
  sha256WithRsa: '1.2.840.113549.1.1.11',
  extensionRequest: '1.2.840.113549.1.9.14',
  subjectAltName: '2.5.29.17',
  basicConstraints: '2.5.29.19',
  keyUsage: '2.5.29.15',
  extKeyUsage: '2.5.29.37',
  subjectKeyId: '2.5.29.14',
  authorityKeyId: '2.5.29.35',
  serverAuth: '1.3.6.1.5.5.7.3.1',
  clientAuth: '1.3.6.1.5.5.7.3.2',
  organization: '2.5.4.10',
} as const;

export type KeyUsageName =
  | 'digitalSignature'
  | 'nonRepudiation'
  | 'keyEncipherment'
  | 'dataEncipherment'
  | 'keyAgreement'
  | 'keyCertSign'
  | 'cRLSign'
  | 'encipherOnly'
  | 'decipherOnly';

const KEY_USAGE_NAMES: readonly [KeyUsageName, number][] = [
  ['digitalSignature', KeyUsageFlags.digitalSignature],
  ['nonRepudiation', KeyUsageFlags.nonRepudiation],
  ['keyEncipherment', KeyUsageFlags.keyEncipherment],
  ['dataEncipherment', KeyUsageFlags.dataEncipherment],
  ['keyAgreement', KeyUsageFlags.keyAgreement],
  ['keyCertSign', KeyUsageFlags.keyCertSign],
  ['cRLSign', KeyUsageFlags.cRLSign],
  ['encipherOnly', KeyUsageFlags.encipherOnly],
  ['decipherOnly', KeyUsageFlags.decipherOnly],
];

export function keyUsageFlags(names: readonly KeyUsageName[]): number {
  let flags = 0;
  for (const [name, bit] of KEY_USAGE_NAMES) if (names.includes(name)) flags |= bit;
  return flags;
}

/** Lowercase hex without leading zero bytes (the DER sign pad), as `openssl x509 -serial` prints it. */
export function serialHex(bytes: ArrayBuffer | Uint8Array): string {
  const hex = Buffer.from(bytes instanceof Uint8Array ? bytes : new Uint8Array(bytes)).toString(
    'hex',
  );
  const trimmed = hex.replace(/^(00)+/, '');
  return trimmed === '' ? '00' : trimmed;
}

/**
 * A decoded X.509 certificate: Node's `X509Certificate` for signatures and names, plus the
 * extension details Node does not expose (criticality, key usage bits, path length).
 * Immutable.
 */
export class ParsedCertificate {
  readonly der: Buffer;
  readonly x509: X509Certificate;
  /** Lowercase hex, no leading zeros. */
  readonly serialNumber: string;
  readonly notBefore: Date;
  readonly notAfter: Date;
  readonly subject: string;
  readonly issuer: string;
  /** basicConstraints cA; false when the extension is absent. */
  readonly isCa: boolean;
  readonly pathLength: number | undefined;
  /** Key usage bits, or `undefined` when the extension is absent. */
  readonly keyUsage: ReadonlySet<KeyUsageName> | undefined;
  /** Extended key usage OIDs, or `undefined` when the extension is absent. */
  readonly extendedKeyUsage: readonly string[] | undefined;
  /** Every URI in the subjectAltName extension, in order. */
  readonly uriSans: readonly string[];
  readonly dnsSans: readonly string[];
  /** OIDs of the extensions marked critical. */
  readonly criticalExtensions: readonly string[];
  readonly subjectKeyId: string | undefined;
  readonly authorityKeyId: string | undefined;
  readonly signatureAlgorithm: string;
  #pem: string | undefined;

  constructor(der: Uint8Array) {
    this.der = Buffer.from(der);
    let asn: Certificate;
    try {
      this.x509 = new X509Certificate(this.der);
      asn = AsnConvert.parse(this.der, Certificate);
    } catch (cause) {
      throw new SpiffeError('ERR_SPIFFE_CERT_INVALID', 'certificate is not valid DER X.509', {
        cause,
      });
    }
    const tbs = asn.tbsCertificate;
    this.serialNumber = serialHex(tbs.serialNumber);
    this.notBefore = tbs.validity.notBefore.getTime();
    this.notAfter = tbs.validity.notAfter.getTime();
    this.subject = this.x509.subject;
    this.issuer = this.x509.issuer;
    this.signatureAlgorithm = asn.signatureAlgorithm.algorithm;
    let isCa = false;
    let pathLength: number | undefined;
    let keyUsage: Set<KeyUsageName> | undefined;
    let eku: string[] | undefined;
    const uris: string[] = [];
    const dns: string[] = [];
    const critical: string[] = [];
    let ski: string | undefined;
    let aki: string | undefined;
    try {
      for (const ext of tbs.extensions ?? []) {
        if (ext.critical) critical.push(ext.extnID);
        const value = ext.extnValue.buffer;
        switch (ext.extnID) {
          case OID.basicConstraints: {
            const bc = AsnConvert.parse(value, BasicConstraints);
            isCa = bc.cA;
            pathLength = bc.pathLenConstraint;
            break;
          }
          case OID.keyUsage: {
            const bits = AsnConvert.parse(value, KeyUsage).toNumber();
            keyUsage = new Set(KEY_USAGE_NAMES.filter(([, b]) => bits & b).map(([n]) => n));
            break;
          }
          case OID.extKeyUsage:
            eku = [...AsnConvert.parse(value, ExtendedKeyUsage)];
            break;
          case OID.subjectAltName:
            for (const name of AsnConvert.parse(value, SubjectAlternativeName)) {
              if (name.uniformResourceIdentifier !== undefined)
                uris.push(name.uniformResourceIdentifier);
              if (name.dNSName !== undefined) dns.push(name.dNSName);
            }
            break;
          case OID.subjectKeyId:
            ski = Buffer.from(AsnConvert.parse(value, SubjectKeyIdentifier).buffer).toString('hex');
            break;
          case OID.authorityKeyId: {
            const id = AsnConvert.parse(value, AuthorityKeyIdentifier).keyIdentifier;
            if (id) aki = Buffer.from(id.buffer).toString('hex');
            break;
          }
        }
      }
    } catch (cause) {
      throw new SpiffeError('ERR_SPIFFE_CERT_INVALID', 'certificate has a malformed extension', {
        cause,
      });
    }
    this.isCa = isCa;
    this.pathLength = pathLength;
    this.keyUsage = keyUsage;
    this.extendedKeyUsage = eku ? Object.freeze(eku) : undefined;
    this.uriSans = Object.freeze(uris);
    this.dnsSans = Object.freeze(dns);
    this.criticalExtensions = Object.freeze(critical);
    this.subjectKeyId = ski;
    this.authorityKeyId = aki;
  }

  /** PEM of this certificate. */
  get pem(): string {
    this.#pem ??= encodePem(this.der, 'CERTIFICATE');
    return this.#pem;
  }

  get publicKey(): KeyObject {
    return this.x509.publicKey;
  }

  /** True when `at` lies within [notBefore, notAfter]. */
  isValidAt(at: Date = new Date()): boolean {
    const t = at.getTime();
    return t >= this.notBefore.getTime() && t <= this.notAfter.getTime();
  }

  /** True when `issuer`'s name matches this certificate's issuer and its key verifies our signature. */
  isIssuedBy(issuer: ParsedCertificate): boolean {
    if (this.issuer !== issuer.subject) return false;
    if (this.authorityKeyId && issuer.subjectKeyId && this.authorityKeyId !== issuer.subjectKeyId)
      return false;
    try {
      return this.x509.verify(issuer.publicKey);
    } catch {
      return false;
    }
  }

  get isSelfSigned(): boolean {
    return this.isIssuedBy(this);
  }

  equals(other: ParsedCertificate): boolean {
    return this.der.equals(other.der);
  }
}

/**
 * Decodes certificates from PEM text (every `CERTIFICATE` block, in order), a DER buffer, or
 * an array of either. Throws `ERR_SPIFFE_PEM_INVALID` / `ERR_SPIFFE_CERT_INVALID`.
 */
export function parseCertificates(
  input: string | Uint8Array | readonly (string | Uint8Array)[],
): ParsedCertificate[] {
  if (Array.isArray(input)) return input.flatMap((item) => parseCertificates(item));
  if (typeof input === 'string') {
    const blocks = decodePem(input);
    const certs = blocks.filter((b) => b.label === 'CERTIFICATE');
    if (certs.length === 0) {
      throw new SpiffeError('ERR_SPIFFE_PEM_INVALID', 'no "CERTIFICATE" PEM block found');
    }
    return certs.map((b) => new ParsedCertificate(b.der));
  }
  if (input instanceof Uint8Array) return [new ParsedCertificate(input)];
  throw new SpiffeError(
    'ERR_SPIFFE_INVALID_ARGUMENT',
    'certificates must be PEM text, DER bytes, or an array of those',
  );
}

/** Exactly one certificate; throws when the input holds none or several. */
export function parseCertificate(input: string | Uint8Array): ParsedCertificate {
  const certs = parseCertificates(input);
  if (certs.length !== 1) {
    throw new SpiffeError(
      'ERR_SPIFFE_INVALID_ARGUMENT',
      `expected exactly one certificate, found ${certs.length}`,
    );
  }
  return certs[0]!;
}

export interface SigningAlgorithm {
  readonly hash: 'sha256' | 'sha384';
  readonly identifier: AlgorithmIdentifier;
}

/** The signature algorithm a CA key signs with; throws `ERR_SPIFFE_KEY_UNSUPPORTED` otherwise. */
export function signingAlgorithmFor(key: KeyObject): SigningAlgorithm {
  if (key.asymmetricKeyType === 'ec') {
    const curve = key.asymmetricKeyDetails?.namedCurve;
    if (curve === 'prime256v1')
      return {
        hash: 'sha256',
        identifier: new AlgorithmIdentifier({ algorithm: OID.ecdsaWithSha256 }),
      };
    if (curve === 'secp384r1')
      return {
        hash: 'sha384',
        identifier: new AlgorithmIdentifier({ algorithm: OID.ecdsaWithSha384 }),
      };
    throw new SpiffeError('ERR_SPIFFE_KEY_UNSUPPORTED', `EC curve ${curve} is not supported`);
  }
  if (key.asymmetricKeyType === 'rsa') {
    return {
      hash: 'sha256',
      identifier: new AlgorithmIdentifier({ algorithm: OID.sha256WithRsa, parameters: null }),
    };
  }
  throw new SpiffeError(
    'ERR_SPIFFE_KEY_UNSUPPORTED',
    `${key.asymmetricKeyType} keys are not supported for signing certificates`,
  );
}

/** DER of a signed certificate. */
export function signCertificate(
  tbs: TBSCertificate,
  key: KeyObject,
  alg: SigningAlgorithm,
): Buffer {
  tbs.signature = alg.identifier;
  const tbsDer = Buffer.from(AsnConvert.serialize(tbs));
  const signature = sign(alg.hash, tbsDer, key);
  const cert = new Certificate({
    tbsCertificate: tbs,
    signatureAlgorithm: alg.identifier,
    signatureValue: new Uint8Array(signature).buffer,
  });
  return Buffer.from(AsnConvert.serialize(cert));
}

export function extension(extnID: string, critical: boolean, value: unknown): Extension {
  return new Extension({
    extnID,
    critical,
    extnValue: new OctetString(AsnConvert.serialize(value)),
  });
}

export function uriSan(uri: string, critical: boolean): Extension {
  return extension(
    OID.subjectAltName,
    critical,
    new SubjectAlternativeName([new GeneralName({ uniformResourceIdentifier: uri })]),
  );
}

/** Key identifier: the first 160 bits of SHA-256 over the DER SubjectPublicKeyInfo (RFC 7093 §2 style). */
export function keyIdentifier(spkiDer: Uint8Array): Buffer {
  return createHash('sha256').update(spkiDer).digest().subarray(0, 20);
}
