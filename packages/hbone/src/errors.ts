const brand = Symbol.for('@mesh/hbone.HboneError');

/**
 * Every code an {@link HboneError} can carry, with what it means. Codes are stable: match on
 * `err.code`, never on the message.
 */
export const HBONE_ERROR_CODES = {
  ERR_HBONE_OPTIONS_INVALID:
    'An option passed to the HBONE client or server is out of range or missing.',
  ERR_HBONE_AUTHORITY_INVALID:
    'A CONNECT authority is not ip:port, [ipv6]:port or host:port with a port in 1-65535.',
  ERR_HBONE_CERTIFICATE:
    'No usable workload certificate: the certificate source failed or returned an unusable certificate.',
  ERR_HBONE_DIAL_TIMEOUT:
    'The TCP connection to the next hop did not complete within the dial timeout (often a NetworkPolicy blocking HBONE port 15008).',
  ERR_HBONE_DIAL_FAILED: 'The TCP connection to the next hop failed (refused, unreachable, reset).',
  ERR_HBONE_TLS:
    'The TLS handshake failed (certificate chain, protocol version, alert from the peer).',
  ERR_HBONE_PEER_IDENTITY:
    "The server's certificate carries none of the expected SPIFFE identities.",
  ERR_HBONE_PEER_TRUST_DOMAIN:
    "The client's certificate has no SPIFFE URI SAN in the server's own trust domain.",
  ERR_HBONE_HTTP_STATUS:
    'The server answered the CONNECT with a status other than 200; see `status`.',
  ERR_HBONE_STREAM_RESET: 'The peer reset the HTTP/2 stream; see `rstCode`.',
  ERR_HBONE_REFUSED_STREAM:
    'The peer refused the stream (REFUSED_STREAM or ENHANCE_YOUR_CALM) before processing it; safe to retry.',
  ERR_HBONE_CONNECTION_CLOSED:
    'The HTTP/2 connection closed (GOAWAY, socket error, peer gone) before or while the tunnel was in use.',
  ERR_HBONE_PING_TIMEOUT: 'The peer did not answer an HTTP/2 PING within the keepalive timeout.',
  ERR_HBONE_PROTOCOL:
    'The peer violated HTTP/2 or HBONE (malformed frames, missing headers, bad ALPN).',
  ERR_HBONE_UPSTREAM:
    'The server could not connect the tunnel to its destination (connect failure or timeout).',
  ERR_HBONE_CLOSED: 'The client or server was closed; no new tunnels are accepted.',
} as const;

export type HboneErrorCode = keyof typeof HBONE_ERROR_CODES;

export interface HboneErrorDetails {
  /** HTTP status of a refused CONNECT (`ERR_HBONE_HTTP_STATUS`). */
  status?: number;
  /** HTTP/2 error code of a reset stream or GOAWAY. */
  rstCode?: number;
}

/** The one error class of `@mesh/hbone`. `instanceof` works across duplicated package copies. */
export class HboneError extends Error {
  override readonly name = 'HboneError';
  readonly code: HboneErrorCode;
  readonly status: number | undefined;
  readonly rstCode: number | undefined;

  constructor(code: HboneErrorCode, message: string, options?: ErrorOptions & HboneErrorDetails) {
    super(message, options);
    this.code = code;
    this.status = options?.status;
    this.rstCode = options?.rstCode;
    Object.defineProperty(this, brand, { value: true });
  }

  static override [Symbol.hasInstance](value: unknown): boolean {
    return typeof value === 'object' && value !== null && brand in value;
  }
}

/** HTTP/2 error codes (RFC 9113 §7) by number, for messages. */
const H2_CODE_NAMES = [
  'NO_ERROR',
  'PROTOCOL_ERROR',
  'INTERNAL_ERROR',
  'FLOW_CONTROL_ERROR',
  'SETTINGS_TIMEOUT',
  'STREAM_CLOSED',
  'FRAME_SIZE_ERROR',
  'REFUSED_STREAM',
  'CANCEL',
  'COMPRESSION_ERROR',
  'CONNECT_ERROR',
  'ENHANCE_YOUR_CALM',
  'INADEQUATE_SECURITY',
  'HTTP_1_1_REQUIRED',
] as const;

export function h2CodeName(code: number): string {
  return H2_CODE_NAMES[code] ?? `0x${code.toString(16)}`;
}

function h2CodeFromMessage(message: string): number | undefined {
  const name = /NGHTTP2_(\w+)/.exec(message)?.[1];
  const idx = name ? H2_CODE_NAMES.indexOf(name as (typeof H2_CODE_NAMES)[number]) : -1;
  return idx >= 0 ? idx : undefined;
}

const DIAL_ERRNOS = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'EADDRNOTAVAIL',
  'EADDRINUSE',
  'EPIPE',
  'ENOTFOUND',
  'EAI_AGAIN',
  'EPERM',
  'EACCES',
]);

/**
 * Maps an error thrown by `node:http2`, `node:tls` or `node:net` (ERR_HTTP2_*, ERR_SSL_*,
 * OpenSSL verify codes, errno) to an {@link HboneError}; the original stays in `cause`.
 * HboneErrors pass through unchanged.
 */
export function toHboneError(err: unknown, context = 'hbone'): HboneError {
  if (err instanceof HboneError) return err;
  const e = (err ?? {}) as { code?: unknown; message?: unknown };
  const code = typeof e.code === 'string' ? e.code : '';
  const message = typeof e.message === 'string' ? e.message : String(err);
  const wrap = (c: HboneErrorCode, details?: HboneErrorDetails) =>
    new HboneError(c, `${context}: ${message}`, { cause: err, ...details });

  if (code === 'ERR_HTTP2_STREAM_ERROR') {
    const rstCode = h2CodeFromMessage(message);
    if (rstCode === 7 || rstCode === 11) return wrap('ERR_HBONE_REFUSED_STREAM', { rstCode });
    return wrap('ERR_HBONE_STREAM_RESET', rstCode === undefined ? {} : { rstCode });
  }
  if (code === 'ERR_HTTP2_GOAWAY_SESSION' || code === 'ERR_HTTP2_INVALID_SESSION') {
    return wrap('ERR_HBONE_CONNECTION_CLOSED');
  }
  if (code === 'ERR_HTTP2_STREAM_CANCEL') return wrap('ERR_HBONE_CONNECTION_CLOSED');
  if (code === 'ERR_HTTP2_SESSION_ERROR') {
    const rstCode = h2CodeFromMessage(message);
    return wrap('ERR_HBONE_CONNECTION_CLOSED', rstCode === undefined ? {} : { rstCode });
  }
  if (code === 'ERR_HTTP2_PING_CANCEL') return wrap('ERR_HBONE_CONNECTION_CLOSED');
  if (code === 'ERR_HTTP2_ERROR' || code.startsWith('ERR_HTTP2_'))
    return wrap('ERR_HBONE_PROTOCOL');
  if (
    code.startsWith('ERR_SSL_') ||
    code.startsWith('ERR_TLS_') ||
    /^(CERT_|UNABLE_TO_|DEPTH_ZERO|SELF_SIGNED|HOSTNAME_MISMATCH|INVALID_CA|PATH_LENGTH)/.test(code)
  ) {
    return wrap('ERR_HBONE_TLS');
  }
  if (code === 'ETIMEDOUT') return wrap('ERR_HBONE_DIAL_TIMEOUT');
  if (DIAL_ERRNOS.has(code)) return wrap('ERR_HBONE_DIAL_FAILED');
  return wrap('ERR_HBONE_CONNECTION_CLOSED');
}
