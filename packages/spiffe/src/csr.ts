import { createPublicKey, generateKeyPairSync, type KeyObject, sign, verify } from 'node:crypto';
import { CertificationRequest, CertificationRequestInfo } from '@peculiar/asn1-csr';
import { AsnConvert } from '@peculiar/asn1-schema';
import {
  AlgorithmIdentifier,
  Attribute,
  Extensions,
  Name,
  SubjectAlternativeName,
  SubjectPublicKeyInfo,
} from '@peculiar/asn1-x509';
import { SpiffeError } from './errors.js';
import { decodePem, encodePem } from './pem.js';
import { SpiffeId } from './spiffe-id.js';
import { OID, uriSan } from './x509.js';

/** A PKCS#10 request and the private key it was made with. */
export interface CsrWithKey {
  /** PKCS#10 PEM (`CERTIFICATE REQUEST`). */
  readonly csr: string;
  /** PKCS#8 PEM (`PRIVATE KEY`) of a fresh ECDSA P-256 key. */
  readonly privateKey: string;
}

/**
 * Makes a CSR exactly as ztunnel sends it to istiod: a fresh ECDSA P-256 key, signed with
 * SHA-256, an empty subject, and one URI SAN (critical, since the subject is empty) holding
 * the SPIFFE ID.
 */
export function createCsr(identity: SpiffeId | string): CsrWithKey {
  const id = typeof identity === 'string' ? SpiffeId.parse(identity) : identity;
  const { publicKey, privateKey } = generateKeyPairSync('ec', { namedCurve: 'prime256v1' });
  const spki = publicKey.export({ format: 'der', type: 'spki' });
  const info = new CertificationRequestInfo({
    version: 0,
    subject: new Name(),
    subjectPKInfo: AsnConvert.parse(spki, SubjectPublicKeyInfo),
  });
  info.attributes.push(
    new Attribute({
      type: OID.extensionRequest,
      values: [AsnConvert.serialize(new Extensions([uriSan(id.toString(), true)]))],
    }),
  );
  const infoDer = Buffer.from(AsnConvert.serialize(info));
  const req = new CertificationRequest({
    certificationRequestInfo: info,
    signatureAlgorithm: new AlgorithmIdentifier({ algorithm: OID.ecdsaWithSha256 }),
    signature: new Uint8Array(sign('sha256', infoDer, privateKey)).buffer,
  });
  return {
    csr: encodePem(new Uint8Array(AsnConvert.serialize(req)), 'CERTIFICATE REQUEST'),
    privateKey: privateKey.export({ format: 'pem', type: 'pkcs8' }) as string,
  };
}

/** A decoded PKCS#10 request whose self-signature has been verified. Immutable. */
export interface ParsedCsr {
  readonly der: Buffer;
  readonly publicKey: KeyObject;
  /** DER SubjectPublicKeyInfo, copied as-is into the issued certificate. */
  readonly subjectPublicKeyInfo: Buffer;
  /** `'P-256'` or `'P-384'`. */
  readonly curve: 'P-256' | 'P-384';
  /** True when the subject DN is empty. */
  readonly emptySubject: boolean;
  /** Every URI in the requested subjectAltName, in order. */
  readonly uriSans: readonly string[];
  readonly sanCritical: boolean;
}

const CURVES: Record<string, { curve: 'P-256' | 'P-384' }> = {
  prime256v1: { curve: 'P-256' },
  secp384r1: { curve: 'P-384' },
};

/** ECDSA signature algorithms accepted on a CSR (openssl signs P-384 requests with SHA-256). */
const ECDSA_HASHES: Record<string, string> = {
  [OID.ecdsaWithSha256]: 'sha256',
  [OID.ecdsaWithSha384]: 'sha384',
};

/**
 * Decodes a PKCS#10 request (PEM or DER) and verifies its self-signature. Only ECDSA P-256 or
 * P-384 keys signed with SHA-256 or SHA-384 are accepted; RSA requests fail with
 * `ERR_SPIFFE_CSR_KEY_UNSUPPORTED`.
 */
export function parseCsr(input: string | Uint8Array): ParsedCsr {
  let der: Buffer;
  if (typeof input === 'string') {
    const blocks = decodePem(input).filter(
      (b) => b.label === 'CERTIFICATE REQUEST' || b.label === 'NEW CERTIFICATE REQUEST',
    );
    if (blocks.length !== 1) {
      throw new SpiffeError(
        'ERR_SPIFFE_PEM_INVALID',
        `expected exactly one "CERTIFICATE REQUEST" PEM block, found ${blocks.length}`,
      );
    }
    der = blocks[0]!.der;
  } else {
    der = Buffer.from(input);
  }
  let req: CertificationRequest;
  try {
    req = AsnConvert.parse(der, CertificationRequest);
  } catch (cause) {
    throw new SpiffeError('ERR_SPIFFE_CSR_INVALID', 'CSR is not valid DER PKCS#10', { cause });
  }
  const info = req.certificationRequestInfo;
  const spki = Buffer.from(AsnConvert.serialize(info.subjectPKInfo));
  let publicKey: KeyObject;
  try {
    publicKey = createPublicKey({ key: spki, format: 'der', type: 'spki' });
  } catch (cause) {
    throw new SpiffeError('ERR_SPIFFE_CSR_INVALID', 'CSR public key cannot be decoded', { cause });
  }
  const namedCurve = publicKey.asymmetricKeyDetails?.namedCurve;
  const curve = publicKey.asymmetricKeyType === 'ec' && namedCurve ? CURVES[namedCurve] : undefined;
  if (!curve) {
    const kind =
      publicKey.asymmetricKeyType === 'ec'
        ? `EC ${namedCurve ?? 'unknown curve'}`
        : (publicKey.asymmetricKeyType ?? 'unknown').toUpperCase();
    throw new SpiffeError(
      'ERR_SPIFFE_CSR_KEY_UNSUPPORTED',
      `CSR public key is ${kind}; only ECDSA P-256 or P-384 is accepted`,
    );
  }
  const hash = ECDSA_HASHES[req.signatureAlgorithm.algorithm];
  if (!hash) {
    throw new SpiffeError(
      'ERR_SPIFFE_CSR_KEY_UNSUPPORTED',
      `CSR signature algorithm ${req.signatureAlgorithm.algorithm} is not ECDSA with SHA-256 or SHA-384`,
    );
  }
  const signed = req.certificationRequestInfoRaw
    ? Buffer.from(req.certificationRequestInfoRaw)
    : Buffer.from(AsnConvert.serialize(info));
  let ok = false;
  try {
    ok = verify(hash, signed, publicKey, Buffer.from(req.signature));
  } catch {
    ok = false;
  }
  if (!ok) {
    throw new SpiffeError(
      'ERR_SPIFFE_CSR_SIGNATURE_INVALID',
      'CSR signature does not verify with its public key',
    );
  }
  const uris: string[] = [];
  let sanCritical = false;
  try {
    for (const attr of info.attributes) {
      if (attr.type !== OID.extensionRequest) continue;
      for (const value of attr.values) {
        for (const ext of AsnConvert.parse(value, Extensions)) {
          if (ext.extnID !== OID.subjectAltName) continue;
          sanCritical = ext.critical;
          for (const name of AsnConvert.parse(ext.extnValue.buffer, SubjectAlternativeName)) {
            if (name.uniformResourceIdentifier !== undefined)
              uris.push(name.uniformResourceIdentifier);
          }
        }
      }
    }
  } catch (cause) {
    throw new SpiffeError('ERR_SPIFFE_CSR_INVALID', 'CSR extension request is malformed', {
      cause,
    });
  }
  return Object.freeze({
    der,
    publicKey,
    subjectPublicKeyInfo: spki,
    curve: curve.curve,
    emptySubject: info.subject.length === 0,
    uriSans: Object.freeze(uris),
    sanCritical,
  });
}
