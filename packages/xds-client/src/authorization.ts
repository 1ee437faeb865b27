import type {
  Authorization,
  Clause,
  IpCidr,
  Match,
  PolicyAction,
  PolicyScope,
  Rule,
  ServiceAccountMatch,
  StringMatch,
} from '@mesh/l4-rbac';
import { istio } from './gen/proto.js';
import { ipFromBytes, ipToBytes, maxPrefix } from './ip.js';
import { type DecodeResult, enumName, Problems, type XdsResourceType } from './resource-type.js';

const pb = istio.security;

export const AUTHORIZATION_TYPE_URL = 'type.googleapis.com/istio.security.Authorization';

const SCOPES: readonly PolicyScope[] = ['GLOBAL', 'NAMESPACE', 'WORKLOAD_SELECTOR'];
const ACTIONS: readonly PolicyAction[] = ['ALLOW', 'DENY'];

function stringMatch(
  m: istio.security.StringMatch.$Properties,
  path: string,
  problems: Problems,
): StringMatch {
  if (m.exact != null) return { kind: 'exact', value: m.exact };
  if (m.prefix != null) return { kind: 'prefix', value: m.prefix };
  if (m.suffix != null) return { kind: 'suffix', value: m.suffix };
  if (m.presence != null) return { kind: 'presence' };
  problems.add(path, 'string match has no match_type');
  return { kind: 'exact', value: '' };
}

function cidr(a: istio.security.Address.$Properties, path: string, problems: Problems): IpCidr {
  const bytes = a.address ?? new Uint8Array();
  const address = ipFromBytes(bytes);
  const prefixLength = a.length ?? 0;
  if (address === undefined) {
    problems.add(`${path}.address`, `IP address of ${bytes.length} bytes (want 4 or 16)`);
    return { address: '', prefixLength };
  }
  if (prefixLength > maxPrefix(bytes)) {
    problems.add(`${path}.length`, `prefix length ${prefixLength} is too long for ${address}`);
  }
  return { address, prefixLength };
}

function ports(list: number[] | null | undefined, path: string, problems: Problems): number[] {
  const out = list ?? [];
  out.forEach((p, i) => {
    if (p > 65535) problems.add(`${path}[${i}]`, `port ${p} is out of range`);
  });
  return out;
}

function match(m: istio.security.Match.$Properties, path: string, problems: Problems): Match {
  const strings = (list: istio.security.StringMatch.$Properties[] | null | undefined, f: string) =>
    (list ?? []).map((s, i) => stringMatch(s, `${path}.${f}[${i}]`, problems));
  const cidrs = (list: istio.security.Address.$Properties[] | null | undefined, f: string) =>
    (list ?? []).map((a, i) => cidr(a, `${path}.${f}[${i}]`, problems));
  const accounts = (
    list: istio.security.ServiceAccountMatch.$Properties[] | null | undefined,
  ): ServiceAccountMatch[] =>
    (list ?? []).map((s) => ({
      namespace: s.namespace ?? '',
      serviceAccount: s.serviceAccount ?? '',
    }));
  return {
    namespaces: strings(m.namespaces, 'namespaces'),
    notNamespaces: strings(m.notNamespaces, 'not_namespaces'),
    principals: strings(m.principals, 'principals'),
    notPrincipals: strings(m.notPrincipals, 'not_principals'),
    sourceIps: cidrs(m.sourceIps, 'source_ips'),
    notSourceIps: cidrs(m.notSourceIps, 'not_source_ips'),
    destinationIps: cidrs(m.destinationIps, 'destination_ips'),
    notDestinationIps: cidrs(m.notDestinationIps, 'not_destination_ips'),
    destinationPorts: ports(m.destinationPorts, `${path}.destination_ports`, problems),
    notDestinationPorts: ports(m.notDestinationPorts, `${path}.not_destination_ports`, problems),
    serviceAccounts: accounts(m.serviceAccounts),
    notServiceAccounts: accounts(m.notServiceAccounts),
  };
}

/** Decode and validate the bytes of one `istio.security.Authorization`. Never throws. */
export function decodeAuthorization(bytes: Uint8Array): DecodeResult<Authorization> {
  let msg: istio.security.Authorization;
  try {
    msg = pb.Authorization.decode(bytes);
  } catch (err) {
    return {
      valid: false,
      errors: [`not a valid istio.security.Authorization: ${(err as Error).message}`],
    };
  }
  const problems = new Problems();
  const rules: Rule[] = (msg.rules ?? []).map((r, ri) => ({
    clauses: (r.clauses ?? []).map(
      (c, ci): Clause => ({
        matches: (c.matches ?? []).map((m, mi) =>
          match(m, `rules[${ri}].clauses[${ci}].matches[${mi}]`, problems),
        ),
      }),
    ),
  }));
  const value: Authorization = {
    name: msg.name ?? '',
    namespace: msg.namespace ?? '',
    scope: enumName(SCOPES, msg.scope, 'Scope', 'scope', problems),
    action: enumName(ACTIONS, msg.action, 'Action', 'action', problems),
    dryRun: msg.dryRun ?? false,
    rules,
  };
  if (problems.list.length > 0) return { valid: false, errors: problems.list };
  return { valid: true, value };
}

function encodeStringMatch(m: StringMatch): istio.security.StringMatch.$Properties {
  return m.kind === 'presence' ? { presence: {} } : { [m.kind]: m.value };
}

function encodeCidr(c: IpCidr): istio.security.Address.$Properties {
  return { address: ipToBytes(c.address), length: c.prefixLength };
}

/** Encode a plain {@link Authorization} to protobuf bytes. */
export function encodeAuthorization(value: Authorization): Uint8Array {
  return pb.Authorization.encode({
    name: value.name,
    namespace: value.namespace,
    scope: SCOPES.indexOf(value.scope),
    action: ACTIONS.indexOf(value.action),
    dryRun: value.dryRun,
    rules: value.rules.map((r) => ({
      clauses: r.clauses.map((c) => ({
        matches: c.matches.map((m) => ({
          namespaces: m.namespaces.map(encodeStringMatch),
          notNamespaces: m.notNamespaces.map(encodeStringMatch),
          principals: m.principals.map(encodeStringMatch),
          notPrincipals: m.notPrincipals.map(encodeStringMatch),
          sourceIps: m.sourceIps.map(encodeCidr),
          notSourceIps: m.notSourceIps.map(encodeCidr),
          destinationIps: m.destinationIps.map(encodeCidr),
          notDestinationIps: m.notDestinationIps.map(encodeCidr),
          destinationPorts: m.destinationPorts,
          notDestinationPorts: m.notDestinationPorts,
          serviceAccounts: m.serviceAccounts,
          notServiceAccounts: m.notServiceAccounts,
        })),
      })),
    })),
  }).finish();
}

/** `type.googleapis.com/istio.security.Authorization`: L4 policies, named `namespace/name`. */
export const authorizationType: XdsResourceType<Authorization> = {
  typeUrl: AUTHORIZATION_TYPE_URL,
  decode: decodeAuthorization,
  encode: encodeAuthorization,
  name: (value) => `${value.namespace}/${value.name}`,
};
