import { describe, expect, it } from 'vitest';
import {
  compilePolicy,
  decide,
  PolicyStore,
  RbacError,
  validateAuthorization,
} from '../src/index.js';
import { cidr, exact, match, policy, request, rule } from './helpers.js';

function codeOf(fn: () => unknown): string {
  try {
    fn();
  } catch (err) {
    expect(err).toBeInstanceOf(RbacError);
    return (err as RbacError).code;
  }
  throw new Error('did not throw');
}

describe('model (xDS form) validation', () => {
  const cases: Array<[string, unknown, string]> = [
    ['an unknown top-level field', { ...policy({}), groups: [] }, 'ERR_RBAC_INVALID_POLICY'],
    ['an empty name', policy({ name: '' }), 'ERR_RBAC_INVALID_POLICY'],
    ['an empty namespace', policy({ namespace: '' }), 'ERR_RBAC_INVALID_POLICY'],
    ['the AUDIT action', { ...policy({}), action: 'AUDIT' }, 'ERR_RBAC_INVALID_POLICY'],
    ['the CUSTOM action', { ...policy({}), action: 'CUSTOM' }, 'ERR_RBAC_INVALID_POLICY'],
    ['an unknown scope', { ...policy({}), scope: 'CLUSTER' }, 'ERR_RBAC_INVALID_POLICY'],
    ['a missing dryRun', { ...policy({}), dryRun: undefined }, 'ERR_RBAC_INVALID_POLICY'],
    [
      'an unknown match field',
      policy({ rules: [rule([{ ...match({}), hosts: ['x'] } as never])] }),
      'ERR_RBAC_INVALID_POLICY',
    ],
    [
      'an unknown string match kind',
      policy({ rules: [rule([match({ namespaces: [{ kind: 'regex', value: '.*' } as never] })])] }),
      'ERR_RBAC_INVALID_POLICY',
    ],
    [
      'an IPv4 prefix over 32',
      policy({ rules: [rule([match({ sourceIps: [cidr('10.0.0.0', 33)] })])] }),
      'ERR_RBAC_INVALID_CIDR',
    ],
    [
      'an IPv6 prefix over 128',
      policy({ rules: [rule([match({ destinationIps: [cidr('fd00::', 129)] })])] }),
      'ERR_RBAC_INVALID_CIDR',
    ],
    [
      'a malformed address',
      policy({ rules: [rule([match({ notSourceIps: [cidr('10.0.0', 8)] })])] }),
      'ERR_RBAC_INVALID_CIDR',
    ],
    [
      'an address with a zone id',
      policy({ rules: [rule([match({ sourceIps: [cidr('fe80::1%eth0', 128)] })])] }),
      'ERR_RBAC_INVALID_CIDR',
    ],
    [
      'a negative prefix',
      policy({ rules: [rule([match({ sourceIps: [cidr('10.0.0.0', -1)] })])] }),
      'ERR_RBAC_INVALID_CIDR',
    ],
    [
      'port 0',
      policy({ rules: [rule([match({ destinationPorts: [0] })])] }),
      'ERR_RBAC_INVALID_PORT',
    ],
    [
      'port 65536',
      policy({ rules: [rule([match({ notDestinationPorts: [65536] })])] }),
      'ERR_RBAC_INVALID_PORT',
    ],
    [
      'a fractional port',
      policy({ rules: [rule([match({ destinationPorts: [80.5] })])] }),
      'ERR_RBAC_INVALID_PORT',
    ],
    [
      'a port as a string',
      policy({ rules: [rule([match({ destinationPorts: ['80' as never] })])] }),
      'ERR_RBAC_INVALID_PORT',
    ],
    ['rules that are not a list', { ...policy({}), rules: {} }, 'ERR_RBAC_INVALID_POLICY'],
    ['null', null, 'ERR_RBAC_INVALID_POLICY'],
  ];
  it.each(cases)('rejects %s with a stable code', (_name, input, code) => {
    expect(codeOf(() => validateAuthorization(input))).toBe(code);
  });

  it('names the path of the problem in the message', () => {
    expect(() =>
      validateAuthorization(
        policy({ rules: [rule([match({}), match({ destinationPorts: [70000] })])] }),
      ),
    ).toThrow('policy ns/p: rules[0].clauses[0].matches[1].destinationPorts[0]');
  });

  it('warns about an exact match on "" and an empty service account, with stable codes', () => {
    const { warnings } = validateAuthorization(
      policy({
        rules: [
          rule([
            match({
              principals: [exact('')],
              serviceAccounts: [{ namespace: '', serviceAccount: 'x' }],
            }),
          ]),
        ],
      }),
    );
    expect(warnings.map((w) => w.code)).toEqual([
      'WARN_RBAC_EMPTY_STRING',
      'WARN_RBAC_EMPTY_STRING',
    ]);
    expect(warnings[0]?.policy).toBe('ns/p');
  });

  it('fills missing match lists so a sparse decoded match is accepted', () => {
    const { policy: p } = validateAuthorization({
      ...policy({}),
      rules: [{ clauses: [{ matches: [{ destinationPorts: [80] }] }] }],
    });
    expect(p.rules[0]?.clauses[0]?.matches[0]?.namespaces).toEqual([]);
  });

  it('compilePolicy on an unvalidated policy with a bad CIDR throws a typed error', () => {
    expect(
      codeOf(() => compilePolicy(policy({ rules: [rule([match({ sourceIps: [cidr('', 8)] })])] }))),
    ).toBe('ERR_RBAC_INVALID_CIDR');
  });

  it('the store rejects invalid policies with the same codes and stays empty', () => {
    const store = new PolicyStore();
    expect(
      codeOf(() => store.set(policy({ rules: [rule([match({ destinationPorts: [0] })])] }))),
    ).toBe('ERR_RBAC_INVALID_PORT');
    expect(store.size).toBe(0);
    expect(store.version).toBe(0);
  });
});

describe('request validation', () => {
  const cases: Array<[string, Parameters<typeof request>[0]]> = [
    ['an identity without spiffe://', { identity: 'td/ns/a/sa/b' }],
    ['an empty identity', { identity: '' }],
    ['a bad source IP', { sourceIp: '300.1.1.1' }],
    ['a bad destination IP', { destinationIp: 'localhost' }],
    ['a port out of range', { destinationPort: 70000 }],
    ['a destination without namespace', { destination: {} as never }],
  ];
  it.each(cases)('rejects %s with ERR_RBAC_INVALID_REQUEST', (_name, fields) => {
    expect(codeOf(() => decide([], request(fields)))).toBe('ERR_RBAC_INVALID_REQUEST');
  });
});
