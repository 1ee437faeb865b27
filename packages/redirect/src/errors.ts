const brand = Symbol.for('@mesh/redirect.RedirectError');

/**
 * Every code a {@link RedirectError} can carry, with what it means. Codes are stable: match on
 * `err.code`, never on the message. Failures of a system call are not RedirectErrors: they
 * are thrown with Node's own shape (`code` such as `EPERM`, `errno`, `syscall`).
 */
export const REDIRECT_ERROR_CODES = {
  ERR_REDIRECT_NOT_SUPPORTED:
    'The native addon is not available on this platform (only Linux has these socket options) or failed to load; see `loadError`.',
  ERR_REDIRECT_INVALID_ARGUMENT:
    'An option is out of range or of the wrong type: a port, mark, address, family, file descriptor or namespace.',
  ERR_REDIRECT_NO_FD:
    'The Node socket or server has no open file descriptor (not yet connected or listening, already closed, or not a TCP handle).',
  ERR_REDIRECT_RULES_FAILED:
    'Applying or removing redirect rules or policy routes failed; nothing stays half-applied. `cause` holds the failing command, its exit status and stderr, and `code: "EPERM"` when it lacked privilege.',
  ERR_REDIRECT_COMMAND_MISSING:
    'A required command (iptables-restore, ip6tables-restore, nft, ip or nsenter) is not installed.',
} as const;

export type RedirectErrorCode = keyof typeof REDIRECT_ERROR_CODES;

/** The one error class of `@mesh/redirect`. `instanceof` works across duplicated package copies. */
export class RedirectError extends Error {
  override readonly name = 'RedirectError';
  readonly code: RedirectErrorCode;

  constructor(code: RedirectErrorCode, message: string, options?: ErrorOptions) {
    super(message, options);
    this.code = code;
    Object.defineProperty(this, brand, { value: true });
  }

  static override [Symbol.hasInstance](value: unknown): boolean {
    return typeof value === 'object' && value !== null && brand in value;
  }
}

/** The shape Node gives its own system errors (`fs`, `net`): what callers branch on. */
export interface SystemError extends Error {
  /** Symbolic errno name, e.g. `EPERM`, `EADDRNOTAVAIL`. */
  code: string;
  /** Negative errno, as in Node (`-1` for EPERM). */
  errno: number;
  /** The failing call: `socket`, `setsockopt`, `bind`, `listen`, `getsockopt`, `setns`, `open`. */
  syscall: string;
  /** The socket option or namespace flag involved, e.g. `IP_TRANSPARENT`, `CLONE_NEWNET`. */
  option?: string;
}
