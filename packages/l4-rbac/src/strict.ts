import type { Authorization } from './model.js';
import { emptyMatch } from './validate.js';

export const STATIC_STRICT_POLICY_NAME = 'istio_converted_static_strict';
export const PEER_AUTHENTICATION_POLICY_PREFIX = 'converted_peer_authentication_';

export type MtlsMode = 'STRICT' | 'PERMISSIVE' | 'DISABLE' | 'UNSET';

const noIdentity = () => ({ ...emptyMatch(), notPrincipals: [{ kind: 'presence' as const }] });

/**
 * The policy istiod always publishes (§5.6): `<root>/istio_converted_static_strict`,
 * WORKLOAD_SELECTOR, DENY, one rule / clause / match `notPrincipals: [presence]`. It denies
 * every connection without a peer identity on workloads whose effective mode is STRICT.
 */
export function staticStrictPolicy(rootNamespace = 'istio-system'): Authorization {
  return {
    name: STATIC_STRICT_POLICY_NAME,
    namespace: rootNamespace,
    scope: 'WORKLOAD_SELECTOR',
    action: 'DENY',
    dryRun: false,
    rules: [{ clauses: [{ matches: [noIdentity()] }] }],
  };
}

export interface PeerAuthenticationInput {
  /** The PeerAuthentication's name and namespace. */
  name: string;
  namespace: string;
  /** The workload's effective mode (mesh → namespace → workload already resolved). */
  mode: MtlsMode;
  /** `spec.portLevelMtls`: target port → mode (`UNSET` inherits `mode`). */
  portLevelMtls?: Readonly<Record<number | string, MtlsMode>>;
}

/**
 * The per-workload DENY policy istiod derives from a PeerAuthentication with port-level mTLS
 * (`<ns>/converted_peer_authentication_<name>`), or undefined when none is needed: no
 * port-level entries, or every port has the workload's own mode (the static STRICT policy, or
 * nothing, covers it). Under STRICT it denies plaintext on every port except the
 * PERMISSIVE/DISABLE ones; otherwise it denies plaintext on the STRICT ports only.
 */
export function peerAuthenticationPolicy(
  input: PeerAuthenticationInput,
): Authorization | undefined {
  const strict = input.mode === 'STRICT';
  const exceptions: number[] = [];
  for (const [port, portMode] of Object.entries(input.portLevelMtls ?? {})) {
    const effective = portMode === 'UNSET' ? input.mode : portMode;
    if ((effective === 'STRICT') !== strict) exceptions.push(Number(port));
  }
  if (exceptions.length === 0) return undefined;
  exceptions.sort((a, b) => a - b);
  const match = strict
    ? { ...noIdentity(), notDestinationPorts: exceptions }
    : { ...noIdentity(), destinationPorts: exceptions };
  return {
    name: `${PEER_AUTHENTICATION_POLICY_PREFIX}${input.name}`,
    namespace: input.namespace,
    scope: 'WORKLOAD_SELECTOR',
    action: 'DENY',
    dryRun: false,
    rules: [{ clauses: [{ matches: [match] }] }],
  };
}

/**
 * The mTLS keys istiod lists in a workload's `authorizationPolicies`: the per-port policy when
 * there is one (the static policy is then omitted), else the static STRICT policy when the
 * effective mode is STRICT, else none.
 */
export function mtlsPolicyKeys(
  mode: MtlsMode,
  portPolicy?: Pick<Authorization, 'namespace' | 'name'>,
  rootNamespace = 'istio-system',
): string[] {
  if (portPolicy) return [`${portPolicy.namespace}/${portPolicy.name}`];
  return mode === 'STRICT' ? [`${rootNamespace}/${STATIC_STRICT_POLICY_NAME}`] : [];
}
