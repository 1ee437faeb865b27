import {
  type Authorization,
  emptyMatch,
  type Match,
  type RbacRequest,
  type Rule,
} from '../src/index.js';

/** A match with only the given fields set. */
export function match(fields: Partial<Match>): Match {
  return { ...emptyMatch(), ...fields };
}

/** One rule of ANDed clauses, each clause a list of ORed matches. */
export function rule(...clauses: Match[][]): Rule {
  return { clauses: clauses.map((matches) => ({ matches })) };
}

export function policy(fields: Partial<Authorization> & { rules?: Rule[] }): Authorization {
  return {
    name: 'p',
    namespace: 'ns',
    scope: 'NAMESPACE',
    action: 'ALLOW',
    dryRun: false,
    rules: [],
    ...fields,
  };
}

export const exact = (value: string) => ({ kind: 'exact' as const, value });
export const prefix = (value: string) => ({ kind: 'prefix' as const, value });
export const suffix = (value: string) => ({ kind: 'suffix' as const, value });
export const presence = { kind: 'presence' as const };
export const cidr = (address: string, prefixLength: number) => ({ address, prefixLength });

/** ztunnel's rbac.rs test connection: 127.0.0.1 → 127.0.0.2:8080 in namespace `ns`. */
export function request(fields: Partial<RbacRequest> = {}): RbacRequest {
  return {
    identity: null,
    sourceIp: '127.0.0.1',
    destination: { namespace: 'ns' },
    destinationIp: '127.0.0.2',
    destinationPort: 8080,
    ...fields,
  };
}

export const PLAINTEXT = request();
export const MATCHING_TLS = request({ identity: 'spiffe://td/ns/namespace/sa/account' });
export const OTHER_TLS = request({ identity: 'spiffe://td/ns/other/sa/other' });
