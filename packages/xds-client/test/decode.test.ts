import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { istio } from '../src/gen/proto.js';
import {
  type Address,
  decodeAddress,
  decodeAuthorization,
  encodeAddress,
  encodeAuthorization,
  ipFromBytes,
  ipToBytes,
} from '../src/index.js';
import { bogus, emptyMatch, policy, service, workload } from './fixtures.js';

const wl = (w: istio.workload.Workload.$Properties) =>
  istio.workload.Address.encode({ workload: w }).finish();
const svc = (s: istio.workload.Service.$Properties) =>
  istio.workload.Address.encode({ service: s }).finish();
const v4 = (s: string) => ipToBytes(s);

function valid(bytes: Uint8Array): Address {
  const r = decodeAddress(bytes);
  if (!r.valid) throw new Error(r.errors.join('; '));
  return r.value;
}

function errors(bytes: Uint8Array): string[] {
  const r = decodeAddress(bytes);
  return r.valid ? [] : r.errors;
}

describe('decodeAddress', () => {
  it('applies the xDS defaults: trust domain, service account, cluster id and capacity', () => {
    const a = valid(wl({ uid: 'u', addresses: [v4('10.0.0.1')] }));
    expect(a.kind === 'workload' && a.workload).toMatchObject({
      trustDomain: 'cluster.local',
      serviceAccount: 'default',
      clusterId: 'Kubernetes',
      capacity: 1,
      tunnelProtocol: 'NONE',
      status: 'HEALTHY',
      workloadType: 'DEPLOYMENT',
      networkMode: 'STANDARD',
      addresses: ['10.0.0.1'],
    });
  });

  it('keeps an explicit capacity of 0 and treats application_tunnel.port 0 as no port', () => {
    const a = valid(
      wl({ uid: 'u', capacity: { value: 0 }, applicationTunnel: { protocol: 1, port: 0 } }),
    );
    expect(a.kind === 'workload' && a.workload.capacity).toBe(0);
    expect(a.kind === 'workload' && a.workload.applicationTunnel).toEqual({ protocol: 'PROXY' });
    const b = valid(wl({ uid: 'u', applicationTunnel: { protocol: 1, port: 15088 } }));
    expect(b.kind === 'workload' && b.workload.applicationTunnel).toEqual({
      protocol: 'PROXY',
      port: 15088,
    });
  });

  it('prints IPv6 addresses in RFC 5952 form', () => {
    const a = valid(
      wl({ uid: 'u', addresses: [ipToBytes('2001:db8:0:0:0:0:0:1'), ipToBytes('fd00:0:0:1::')] }),
    );
    expect(a.kind === 'workload' && a.workload.addresses).toEqual(['2001:db8::1', 'fd00:0:0:1::']);
  });

  it('rejects LEGACY_ISTIO_MTLS and unknown enum values, each with its field path', () => {
    expect(errors(wl({ uid: 'u', tunnelProtocol: 2 }))).toEqual([
      'workload.tunnel_protocol: LEGACY_ISTIO_MTLS is not supported',
    ]);
    expect(errors(wl({ uid: 'u', tunnelProtocol: bogus(5) }))).toEqual([
      'workload.tunnel_protocol: unknown TunnelProtocol value 5',
    ]);
    expect(errors(wl({ uid: 'u', workloadType: bogus(4), networkMode: bogus(2) }))).toEqual([
      'workload.workload_type: unknown WorkloadType value 4',
      'workload.network_mode: unknown NetworkMode value 2',
    ]);
    expect(errors(svc({ name: 's', ipFamilies: bogus(4), visibility: bogus(3) }))).toEqual([
      'service.ip_families: unknown IPFamilies value 4',
      'service.visibility: unknown Service.Visibility value 3',
    ]);
  });

  it('rejects IPs that are not 4 or 16 bytes, gateways without destination, out-of-range ports', () => {
    expect(
      errors(
        wl({
          uid: 'u',
          addresses: [Uint8Array.of(1, 2, 3)],
          waypoint: { hboneMtlsPort: 15008 },
          services: { 'ns/h': { ports: [{ servicePort: 70000, targetPort: 80 }] } },
        }),
      ),
    ).toEqual([
      'workload.services["ns/h"].ports[0].service_port: port 70000 is out of range',
      'workload.addresses[0]: IP address of 3 bytes (want 4 or 16)',
      'workload.waypoint: gateway address has no destination',
    ]);
  });

  it('decodes service CIDR VIPs and rejects prefix lengths longer than the address', () => {
    const a = valid(
      svc({
        name: 's',
        addresses: [
          { network: 'n1', address: v4('10.96.0.0'), length: 16 },
          { address: v4('10.96.0.10') },
        ],
      }),
    );
    expect(a.kind === 'service' && a.service.addresses).toEqual([
      { network: 'n1', address: '10.96.0.0', prefixLength: 16 },
      { network: '', address: '10.96.0.10' },
    ]);
    expect(
      errors(svc({ name: 's', addresses: [{ address: v4('10.0.0.0'), length: 33 }] })),
    ).toEqual(['service.addresses[0].length: prefix length 33 is too long for 10.0.0.0']);
  });

  it('decodes load balancing and rejects UNSPECIFIED_SCOPE in routing preferences', () => {
    const a = valid(
      svc({ name: 's', loadBalancing: { routingPreference: [1, 4], mode: 2, healthPolicy: 1 } }),
    );
    expect(a.kind === 'service' && a.service.loadBalancing).toEqual({
      routingPreference: ['REGION', 'NODE'],
      mode: 'FAILOVER',
      healthPolicy: 'ALLOW_ALL',
    });
    expect(errors(svc({ name: 's', loadBalancing: { routingPreference: [0] } }))).toEqual([
      'service.load_balancing.routing_preference[0]: UNSPECIFIED_SCOPE is not a scope',
    ]);
  });

  it('rejects an Address with neither workload nor service, and garbage bytes, without throwing', () => {
    expect(errors(new Uint8Array())).toEqual(['address has neither a workload nor a service']);
    expect(errors(Uint8Array.of(0x0a, 0x05, 0x01))[0]).toMatch(
      /^not a valid istio\.workload\.Address: /,
    );
  });

  it('round-trips workloads and services through encode and decode', () => {
    const full = workload(3, {
      waypoint: {
        destination: { kind: 'address', network: 'n', address: 'fd00::9' },
        hboneMtlsPort: 15008,
      },
      networkGateway: {
        destination: { kind: 'hostname', namespace: 'istio-system', hostname: 'gw.example' },
        hboneMtlsPort: 15008,
      },
      locality: { region: 'r', zone: 'z', subzone: 's' },
      applicationTunnel: { protocol: 'PROXY', port: 15088 },
      capacity: 5,
      authorizationPolicies: ['istio-system/istio_converted_static_strict'],
    });
    expect(valid(encodeAddress(full))).toEqual(full);
    const s = service(2, {
      waypoint: {
        destination: { kind: 'hostname', namespace: 'ns', hostname: 'wp' },
        hboneMtlsPort: 15008,
      },
      weightedWaypoints: [
        {
          destination: {
            destination: { kind: 'address', network: '', address: '10.1.1.1' },
            hboneMtlsPort: 15008,
          },
          weight: 3,
        },
      ],
      loadBalancing: { routingPreference: ['ZONE'], mode: 'STRICT', healthPolicy: 'ONLY_HEALTHY' },
      addresses: [{ network: '', address: '10.96.0.0', prefixLength: 12 }],
    });
    expect(valid(encodeAddress(s))).toEqual(s);
  });

  it('never throws on arbitrary bytes', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 200 }), (bytes) => {
        const r = decodeAddress(bytes);
        expect(r.valid || r.errors.length > 0).toBe(true);
        const p = decodeAuthorization(bytes);
        expect(p.valid || p.errors.length > 0).toBe(true);
      }),
      { numRuns: 2000 },
    );
  });
});

describe('ip text and bytes', () => {
  it('round-trips any IPv4 and IPv6 address to the canonical text', () => {
    fc.assert(
      fc.property(fc.oneof(fc.ipV4(), fc.ipV6()), (text) => {
        const once = ipFromBytes(ipToBytes(text))!;
        expect(ipFromBytes(ipToBytes(once))).toBe(once);
        expect(ipToBytes(once)).toEqual(ipToBytes(text));
      }),
    );
  });

  it('refuses text that is not an IP with ERR_XDS_ENCODE', () => {
    expect(() => ipToBytes('10.0.0.256')).toThrow(
      expect.objectContaining({ code: 'ERR_XDS_ENCODE' }),
    );
  });
});

describe('decodeAuthorization', () => {
  it('decodes every string match kind, CIDRs, ports and service accounts into the policy model', () => {
    const p = policy('all-kinds', {
      scope: 'WORKLOAD_SELECTOR',
      action: 'DENY',
      dryRun: true,
      rules: [
        {
          clauses: [
            {
              matches: [
                emptyMatch({
                  namespaces: [{ kind: 'exact', value: 'a' }],
                  notNamespaces: [{ kind: 'prefix', value: 'kube-' }],
                  principals: [{ kind: 'suffix', value: '/sa/admin' }],
                  notPrincipals: [{ kind: 'presence' }],
                  sourceIps: [{ address: '10.0.0.0', prefixLength: 8 }],
                  notSourceIps: [{ address: 'fd00::', prefixLength: 64 }],
                  destinationIps: [{ address: '127.0.0.1', prefixLength: 32 }],
                  notDestinationIps: [{ address: '::1', prefixLength: 128 }],
                  destinationPorts: [8080],
                  notDestinationPorts: [9090],
                  serviceAccounts: [{ namespace: 'ns', serviceAccount: 'sa' }],
                  notServiceAccounts: [{ namespace: 'ns', serviceAccount: 'other' }],
                }),
              ],
            },
          ],
        },
        { clauses: [] },
      ],
    });
    const r = decodeAuthorization(encodeAuthorization(p));
    expect(r).toEqual({ valid: true, value: p });
  });

  it('keeps an empty exact string distinct from a missing match type', () => {
    const bytes = istio.security.Authorization.encode({
      name: 'x',
      rules: [{ clauses: [{ matches: [{ namespaces: [{ exact: '' }, {}] }] }] }],
    }).finish();
    expect(decodeAuthorization(bytes)).toEqual({
      valid: false,
      errors: ['rules[0].clauses[0].matches[0].namespaces[1]: string match has no match_type'],
    });
  });

  it('rejects bad CIDRs, ports and unknown scope or action values', () => {
    const bytes = istio.security.Authorization.encode({
      name: 'x',
      scope: bogus(3),
      action: bogus(2),
      rules: [
        {
          clauses: [
            {
              matches: [
                {
                  sourceIps: [{ address: Uint8Array.of(1, 2, 3, 4, 5), length: 8 }],
                  destinationIps: [{ address: v4('10.0.0.0'), length: 40 }],
                  destinationPorts: [65536],
                },
              ],
            },
          ],
        },
      ],
    }).finish();
    const r = decodeAuthorization(bytes);
    expect(r.valid ? [] : r.errors).toEqual([
      'rules[0].clauses[0].matches[0].source_ips[0].address: IP address of 5 bytes (want 4 or 16)',
      'rules[0].clauses[0].matches[0].destination_ips[0].length: prefix length 40 is too long for 10.0.0.0',
      'rules[0].clauses[0].matches[0].destination_ports[0]: port 65536 is out of range',
      'scope: unknown Scope value 3',
      'action: unknown Action value 2',
    ]);
  });
});
