/**
 * The policy model: a plain mirror of the `istio.security.Authorization` resource, with no
 * protobuf objects. `@mesh/xds-client` decodes the xDS resource into exactly this shape,
 * `@mesh/ztunnel` builds it from the local config file, and the evaluator reads only this.
 */

export type PolicyScope = 'GLOBAL' | 'NAMESPACE' | 'WORKLOAD_SELECTOR';
export type PolicyAction = 'ALLOW' | 'DENY';

/** Exact, prefix, suffix, or presence (any non-empty value). */
export type StringMatch =
  | { kind: 'exact'; value: string }
  | { kind: 'prefix'; value: string }
  | { kind: 'suffix'; value: string }
  | { kind: 'presence' };

/** An IP range: textual address plus prefix length (32 / 128 for a single host). */
export interface IpCidr {
  address: string;
  prefixLength: number;
}

export interface ServiceAccountMatch {
  namespace: string;
  serviceAccount: string;
}

/**
 * One match: every non-empty field must hold (AND); values inside a field are ORed; a `not*`
 * field holds when none of its values match. A match with every field empty never matches.
 */
export interface Match {
  namespaces: StringMatch[];
  notNamespaces: StringMatch[];
  principals: StringMatch[];
  notPrincipals: StringMatch[];
  sourceIps: IpCidr[];
  notSourceIps: IpCidr[];
  destinationIps: IpCidr[];
  notDestinationIps: IpCidr[];
  destinationPorts: number[];
  notDestinationPorts: number[];
  serviceAccounts: ServiceAccountMatch[];
  notServiceAccounts: ServiceAccountMatch[];
}

/** A clause holds when any of its matches holds (or it has none). */
export interface Clause {
  matches: Match[];
}

/** A rule holds when all of its clauses hold (or it has none). */
export interface Rule {
  clauses: Clause[];
}

/** A policy matches when any of its rules holds; a policy with no rules never matches. */
export interface Authorization {
  name: string;
  namespace: string;
  scope: PolicyScope;
  action: PolicyAction;
  dryRun: boolean;
  rules: Rule[];
}
