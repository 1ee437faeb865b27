const brand = Symbol.for('@mesh/xds-client.XdsError');

/**
 * Every code an {@link XdsError} can carry, with what it means. Codes are stable: match on
 * `err.code`, never on the message.
 */
export const XDS_ERROR_CODES = {
  ERR_XDS_INVALID_OPTIONS: 'An option passed to the client or the fake control plane is invalid.',
  ERR_XDS_CLOSED: 'The client (or fake control plane) was closed before the operation finished.',
  ERR_XDS_UNKNOWN_TYPE: 'The type URL or resource type is not registered with this client.',
  ERR_XDS_NOT_ON_DEMAND: 'An on-demand lookup was asked for a type that is subscribed by wildcard.',
  ERR_XDS_CREDENTIALS:
    'The root certificate or the bearer token could not be read; the connection attempt failed.',
  ERR_XDS_CONNECT:
    'The control plane could not be reached within the connect timeout (or TLS failed).',
  ERR_XDS_STREAM: 'The discovery stream ended with a gRPC error status.',
  ERR_XDS_ENCODE: 'A plain value could not be encoded to protobuf (for example an IP string).',
  ERR_XDS_NO_STREAM: 'The fake control plane has no open stream to act on.',
} as const;

export type XdsErrorCode = keyof typeof XDS_ERROR_CODES;

/** The one error class of `@mesh/xds-client`. `instanceof` works across duplicated package copies. */
export class XdsError extends Error {
  override readonly name = 'XdsError';
  readonly code: XdsErrorCode;

  constructor(code: XdsErrorCode, message: string, options?: ErrorOptions) {
    super(message, options);
    this.code = code;
    Object.defineProperty(this, brand, { value: true });
  }

  static override [Symbol.hasInstance](value: unknown): boolean {
    return typeof value === 'object' && value !== null && brand in value;
  }
}
