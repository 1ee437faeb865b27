import { constants as cryptoConstants, X509Certificate } from 'node:crypto';
import { createSecureContext, type SecureContext, type SecureContextOptions } from 'node:tls';
import { SpiffeId, type WorkloadCertificate } from '@mesh/spiffe';
import { HboneError } from './errors.js';

/** ztunnel's TLS 1.3 suites, AES-256-GCM preferred; ChaCha20 deliberately absent. */
export const HBONE_CIPHER_SUITES = 'TLS_AES_256_GCM_SHA384:TLS_AES_128_GCM_SHA256';

/** Options shared by both ends: TLS 1.3 only, AES-GCM only, our chain, the trust bundle. */
export function secureContextOptions(cert: WorkloadCertificate): SecureContextOptions {
  return {
    key: cert.privateKey,
    cert: [cert.leaf, ...cert.intermediates].join('\n'),
    ca: [...cert.roots],
    minVersion: 'TLSv1.3',
    maxVersion: 'TLSv1.3',
    ciphers: HBONE_CIPHER_SUITES,
    // Resumption is never used by HBONE clients; tickets would only cost CPU and memory.
    secureOptions: cryptoConstants.SSL_OP_NO_TICKET,
  };
}

const clientContexts = new WeakMap<WorkloadCertificate, SecureContext>();

/**
 * One SecureContext per certificate object: building one costs more than a whole handshake,
 * and a rotation produces a new certificate object, so the cache follows rotation for free.
 */
export function cachedSecureContext(cert: WorkloadCertificate): SecureContext {
  let ctx = clientContexts.get(cert);
  if (!ctx) {
    try {
      ctx = createSecureContext(secureContextOptions(cert));
    } catch (err) {
      throw new HboneError(
        'ERR_HBONE_CERTIFICATE',
        `cannot build a TLS context for ${cert.identity}: ${(err as Error).message}`,
        { cause: err },
      );
    }
    clientContexts.set(cert, ctx);
  }
  return ctx;
}

/** URI SANs of a certificate, in order (handles Node's quoted SAN rendering). */
export function uriSans(cert: X509Certificate): string[] {
  const san = cert.subjectAltName;
  if (!san) return [];
  const out: string[] = [];
  // Node renders `URI:value` entries separated by ", "; values with special characters are
  // JSON-quoted (`URI:"..."`).
  const re = /(?:^|, )URI:("(?:[^"\\]|\\.)*"|[^,]*)/g;
  for (let m = re.exec(san); m; m = re.exec(san)) {
    const raw = m[1]!;
    try {
      out.push(raw.startsWith('"') ? (JSON.parse(raw) as string) : raw);
    } catch {
      // Unparseable quoting: not a SPIFFE ID anyway.
    }
  }
  return out;
}

/** SPIFFE IDs among the certificate's URI SANs. */
export function spiffeIds(cert: X509Certificate): SpiffeId[] {
  const ids: SpiffeId[] = [];
  for (const uri of uriSans(cert)) {
    const id = SpiffeId.tryParse(uri);
    if (id) ids.push(id);
  }
  return ids;
}

export function toX509(
  raw: { raw?: Buffer } | X509Certificate | undefined,
): X509Certificate | undefined {
  if (!raw) return undefined;
  if (raw instanceof X509Certificate) return raw;
  return raw.raw && raw.raw.length > 0 ? new X509Certificate(raw.raw) : undefined;
}
