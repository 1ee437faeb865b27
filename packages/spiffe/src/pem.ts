import { SpiffeError } from './errors.js';

export interface PemBlock {
  readonly label: string;
  readonly der: Buffer;
}

const BEGIN = /-----BEGIN ([A-Z0-9 ]+)-----/g;
const BASE64_BODY = /^[A-Za-z0-9+/=\s]*$/;

/**
 * Splits PEM text into its blocks. Text between blocks is ignored (OpenSSL writes
 * explanatory headers there), but a block with bad armour or bad base64 is an error, not
 * silently skipped.
 */
export function decodePem(text: string): PemBlock[] {
  if (typeof text !== 'string') {
    throw new SpiffeError('ERR_SPIFFE_PEM_INVALID', 'PEM input must be a string');
  }
  const blocks: PemBlock[] = [];
  BEGIN.lastIndex = 0;
  for (let m = BEGIN.exec(text); m !== null; m = BEGIN.exec(text)) {
    const label = m[1]!;
    const endMarker = `-----END ${label}-----`;
    const end = text.indexOf(endMarker, BEGIN.lastIndex);
    if (end === -1) {
      throw new SpiffeError('ERR_SPIFFE_PEM_INVALID', `PEM block "${label}" has no END line`);
    }
    const body = text.slice(BEGIN.lastIndex, end);
    if (!BASE64_BODY.test(body)) {
      throw new SpiffeError(
        'ERR_SPIFFE_PEM_INVALID',
        `PEM block "${label}" holds characters outside base64 (encrypted or header-bearing PEM is not supported)`,
      );
    }
    const compact = body.replace(/\s+/g, '');
    const der = Buffer.from(compact, 'base64');
    if (der.length === 0 || der.toString('base64') !== padBase64(compact)) {
      throw new SpiffeError('ERR_SPIFFE_PEM_INVALID', `PEM block "${label}" has invalid base64`);
    }
    blocks.push({ label, der });
    BEGIN.lastIndex = end + endMarker.length;
  }
  return blocks;
}

function padBase64(s: string): string {
  const stripped = s.replace(/=+$/, '');
  return stripped + '='.repeat((4 - (stripped.length % 4)) % 4);
}

/** The DER bodies of every block labelled one of `labels`; throws when there is none. */
export function decodePemOf(text: string, labels: readonly string[], what: string): Buffer[] {
  const blocks = decodePem(text).filter((b) => labels.includes(b.label));
  if (blocks.length === 0) {
    throw new SpiffeError(
      'ERR_SPIFFE_PEM_INVALID',
      `no ${labels.map((l) => `"${l}"`).join(' or ')} PEM block found in ${what}`,
    );
  }
  return blocks.map((b) => b.der);
}

/** PEM armour around DER, 64 columns, trailing newline. */
export function encodePem(der: Uint8Array, label: string): string {
  const b64 = Buffer.from(der.buffer, der.byteOffset, der.byteLength).toString('base64');
  const lines: string[] = [];
  for (let i = 0; i < b64.length; i += 64) lines.push(b64.slice(i, i + 64));
  return `-----BEGIN ${label}-----\n${lines.join('\n')}\n-----END ${label}-----\n`;
}
