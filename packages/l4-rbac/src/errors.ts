const brand = Symbol.for('@mesh/l4-rbac.RbacError');

/**
 * Every code an {@link RbacError} can carry, with what it means. Codes are stable: match on
 * `err.code`, never on the message.
 */
export const RBAC_ERROR_CODES = {
  ERR_RBAC_INVALID_POLICY:
    'A policy in the model form is malformed: a missing or empty name/namespace, an unknown scope or action, a wrong type, or an unknown field; the message names the path.',
  ERR_RBAC_INVALID_CIDR:
    'An IP address or CIDR in a policy is not a valid IPv4/IPv6 address with a prefix length in range.',
  ERR_RBAC_INVALID_PORT: 'A destination port in a policy is not an integer from 1 to 65535.',
  ERR_RBAC_INVALID_LOCAL_CONFIG:
    "A policy in ztunnel's local-config YAML form is malformed (unknown key, missing `dryRun`, untagged string match, bad enum value); the message names the path.",
  ERR_RBAC_INVALID_MANIFEST:
    'A Kubernetes AuthorizationPolicy manifest is malformed (not YAML, wrong kind or apiVersion, unknown field, missing metadata).',
  ERR_RBAC_UNSUPPORTED_ACTION:
    'The AuthorizationPolicy action is AUDIT or CUSTOM, which istiod never sends to ztunnel.',
  ERR_RBAC_INVALID_REQUEST:
    'The connection given for a decision is malformed: a peer identity that is not a SPIFFE ID, an invalid IP, a port out of range, or a missing destination namespace.',
} as const;

export type RbacErrorCode = keyof typeof RBAC_ERROR_CODES;

/** The one error class of `@mesh/l4-rbac`. `instanceof` works across duplicated package copies. */
export class RbacError extends Error {
  override readonly name = 'RbacError';
  readonly code: RbacErrorCode;

  constructor(code: RbacErrorCode, message: string, options?: ErrorOptions) {
    super(message, options);
    this.code = code;
    Object.defineProperty(this, brand, { value: true });
  }

  static override [Symbol.hasInstance](value: unknown): boolean {
    return typeof value === 'object' && value !== null && brand in value;
  }
}

/**
 * Every code an {@link RbacWarning} can carry. Warnings describe input that was accepted but
 * changed or that behaves differently from what its author most likely meant.
 */
export const RBAC_WARNING_CODES = {
  WARN_RBAC_L7_RULE_DROPPED:
    'An ALLOW rule used an L7-only field; istiod drops the whole rule, so it allows nothing (deny-by-default if no other rule allows).',
  WARN_RBAC_L7_FIELD_IGNORED:
    'A DENY rule used an L7-only field; istiod omits the field, so the rule denies more broadly than written.',
  WARN_RBAC_DENY_RULE_NEVER_MATCHES:
    'After L7 fields were omitted a DENY rule is left with only empty matches, so it never fires.',
  WARN_RBAC_TARGET_REF:
    'The AuthorizationPolicy has targetRef(s): it is for waypoints, and istiod does not send it to ztunnel.',
  WARN_RBAC_DRY_RUN_NOT_SENT:
    'The policy has the istio.io/dry-run annotation and dry-run forwarding is off (istiod default), so istiod does not send it to ztunnel.',
  WARN_RBAC_VALUE_SKIPPED:
    'A port or IP block in a manifest does not parse; istiod silently skips such values, which can broaden the rule.',
  WARN_RBAC_EMPTY_STRING:
    'A string match or service-account match has an empty value; it can never match a peer identity.',
  WARN_RBAC_UNKNOWN_POLICY:
    'A workload lists a policy key the store does not hold (transient ordering); it is skipped, as ztunnel does.',
  WARN_RBAC_NOT_A_POLICY:
    'A YAML document is neither an AuthorizationPolicy, a PeerAuthentication nor a ztunnel local config; it is ignored.',
} as const;

export type RbacWarningCode = keyof typeof RBAC_WARNING_CODES;

/** A non-fatal finding: accepted input whose effect the reader should know. */
export interface RbacWarning {
  code: RbacWarningCode;
  message: string;
  /** `namespace/name` of the policy concerned, when known. */
  policy?: string;
  /** Where in the input, e.g. `spec.rules[0].to[0].operation.methods`. */
  path?: string;
}
