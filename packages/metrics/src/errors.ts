const brand = Symbol.for('@mesh/metrics.MetricsError');

/**
 * Every code a {@link MetricsError} can carry, with what it means. Codes are stable: match on
 * `err.code`, never on the message.
 */
export const METRICS_ERROR_CODES = {
  ERR_METRICS_REGISTRY_REQUIRED:
    'No prom-client Registry was passed; this package never registers on the global default registry.',
  ERR_METRICS_ALREADY_REGISTERED:
    'The registry already holds a metric with one of the names this package registers.',
  ERR_METRICS_INVALID_BYTE_COUNT:
    'A byte count given to a recorded connection is not a finite, non-negative number.',
  ERR_METRICS_INVALID_RESPONSE_FLAG:
    "A connection was closed with a response flag that is not one of ztunnel's flags.",
  ERR_METRICS_INVALID_LABEL:
    'A label input is not of the expected kind (for example a reporter other than source/destination).',
  ERR_METRICS_COLLECT_FAILED:
    'Collecting the registry for a scrape failed; the scrape answered 500 with this message.',
} as const;

export type MetricsErrorCode = keyof typeof METRICS_ERROR_CODES;

/** The one error class of `@mesh/metrics`. `instanceof` works across duplicated package copies. */
export class MetricsError extends Error {
  override readonly name = 'MetricsError';
  readonly code: MetricsErrorCode;

  constructor(code: MetricsErrorCode, message: string, options?: ErrorOptions) {
    super(message, options);
    this.code = code;
    Object.defineProperty(this, brand, { value: true });
  }

  static override [Symbol.hasInstance](value: unknown): boolean {
    return typeof value === 'object' && value !== null && brand in value;
  }
}
