const brand = Symbol.for('@mesh/spiffe.SpiffeError');

/**
 * Every code a {@link SpiffeError} can carry, with what it means. Codes are stable: match on
 * `err.code`, never on the message.
 */
export const SPIFFE_ERROR_CODES = {
  ERR_SPIFFE_ID_INVALID:
    'The string is not a valid SPIFFE ID; the message names the rule it breaks.',
  ERR_SPIFFE_ID_NOT_ISTIO:
    "A valid SPIFFE ID that is not of Istio's form spiffe://<trust-domain>/ns/<namespace>/sa/<service-account>.",
} as const;

export type SpiffeErrorCode = keyof typeof SPIFFE_ERROR_CODES;

/** The one error class of `@mesh/spiffe`. `instanceof` works across duplicated package copies. */
export class SpiffeError extends Error {
  override readonly name = 'SpiffeError';
  readonly code: SpiffeErrorCode;

  constructor(code: SpiffeErrorCode, message: string, options?: ErrorOptions) {
    super(message, options);
    this.code = code;
    Object.defineProperty(this, brand, { value: true });
  }

  static override [Symbol.hasInstance](value: unknown): boolean {
    return typeof value === 'object' && value !== null && brand in value;
  }
}
