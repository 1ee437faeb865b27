const brand = Symbol.for('@mesh/ztunnel.ZtunnelError');

/**
 * Every code a {@link ZtunnelError} can carry, with what it means. Codes are stable: match on
 * `err.code`, never on the message.
 */
export const ZTUNNEL_ERROR_CODES = {
  ERR_ZTUNNEL_CONFIG_INVALID:
    'A setting (flag, environment variable or settings file) has a bad value; `problems` lists each one.',
  ERR_ZTUNNEL_LOCAL_CONFIG_INVALID:
    'The local config file (LOCAL_XDS_PATH / LOCAL_XDS) is not valid; `problems` lists every problem with its path.',
  ERR_ZTUNNEL_WORKLOAD_UNKNOWN:
    'The workload named by PROXY_WORKLOAD_INFO, or the destination of a connection, is not in the state store.',
  ERR_ZTUNNEL_LISTEN_FAILED:
    'A listener could not bind its address (in use, not permitted, bad address).',
  ERR_ZTUNNEL_CA_UNAVAILABLE:
    'No certificate could be obtained for an identity (CA unreachable or refused).',
  ERR_ZTUNNEL_NO_ROUTE:
    'No usable destination: no healthy endpoint behind a service, no port mapping, or an unknown target.',
  ERR_ZTUNNEL_SELF_CALL:
    "The connection targets one of ztunnel's own proxy ports (recursive call).",
  ERR_ZTUNNEL_ORIG_SRC_UNAVAILABLE:
    'ENABLE_ORIG_SRC=true, but this process cannot dial from foreign addresses (no CAP_NET_ADMIN, or not Linux).',
  ERR_ZTUNNEL_SOCKS5_PROTOCOL: 'A SOCKS5 client sent a request this server does not accept.',
} as const;

export type ZtunnelErrorCode = keyof typeof ZTUNNEL_ERROR_CODES;

/** The one error class of `@mesh/ztunnel`. `instanceof` works across duplicated package copies. */
export class ZtunnelError extends Error {
  override readonly name = 'ZtunnelError';
  readonly code: ZtunnelErrorCode;
  /** For the two `*_INVALID` codes: every problem found, one line each. */
  readonly problems: readonly string[];

  constructor(
    code: ZtunnelErrorCode,
    message: string,
    options?: ErrorOptions & { problems?: readonly string[] },
  ) {
    super(message, options);
    this.code = code;
    this.problems = options?.problems ?? [];
    Object.defineProperty(this, brand, { value: true });
  }

  static override [Symbol.hasInstance](value: unknown): boolean {
    return typeof value === 'object' && value !== null && brand in value;
  }
}
