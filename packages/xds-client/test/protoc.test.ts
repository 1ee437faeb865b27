import { execFileSync } from 'node:child_process';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterEach, describe, expect, it } from 'vitest';
import { envoy } from '../src/gen/proto.js';
import {
  addressType,
  buildNode,
  decodeAddress,
  decodeAuthorization,
  encodeAddress,
  encodeAuthorization,
} from '../src/index.js';
import { toProtoStruct } from '../src/node.js';
import { FakeControlPlane } from '../src/testing/index.js';
import { emptyMatch, node, policy, startClient, workload } from './fixtures.js';

// protoc (Debian protobuf-compiler) is the second, independent protobuf implementation.
const protoDir = join(dirname(fileURLToPath(import.meta.url)), '../proto');
const files = ['xds.proto', 'workload.proto', 'authorization.proto'];

function protocEncode(message: string, text: string): Uint8Array {
  return new Uint8Array(
    execFileSync('protoc', [`--encode=${message}`, `-I${protoDir}`, ...files], { input: text }),
  );
}

function protocDecode(message: string, bytes: Uint8Array): string {
  return execFileSync('protoc', [`--decode=${message}`, `-I${protoDir}`, ...files], {
    input: bytes,
  }).toString();
}

const WORKLOAD_TEXT = `
workload {
  uid: "Kubernetes//Pod/shop/api-0"
  name: "api-0"
  namespace: "shop"
  addresses: "\\n\\001\\000\\005"
  addresses: "\\375\\000\\000\\000\\000\\000\\000\\000\\000\\000\\000\\000\\000\\000\\000\\005"
  tunnel_protocol: HBONE
  service_account: "api"
  node: "node-a"
  status: UNHEALTHY
  workload_type: POD
  services {
    key: "shop/api.shop.svc.cluster.local"
    value { ports { service_port: 80 target_port: 8080 app_protocol: HTTP2 } }
  }
  waypoint { address { address: "\\n\\001\\000\\007" } hbone_mtls_port: 15008 }
  capacity { value: 3 }
  application_tunnel { protocol: PROXY port: 0 }
}`;

describe('interop with protoc', () => {
  const cleanups: (() => Promise<void>)[] = [];
  afterEach(async () => {
    for (const c of cleanups.splice(0).reverse()) await c();
  });

  it('decodes a workload encoded by protoc --encode', () => {
    const r = decodeAddress(protocEncode('istio.workload.Address', WORKLOAD_TEXT));
    expect(r.valid).toBe(true);
    if (!r.valid || r.value.kind !== 'workload') return;
    expect(r.value.workload).toMatchObject({
      uid: 'Kubernetes//Pod/shop/api-0',
      addresses: ['10.1.0.5', 'fd00::5'],
      tunnelProtocol: 'HBONE',
      serviceAccount: 'api',
      trustDomain: 'cluster.local',
      clusterId: 'Kubernetes',
      status: 'UNHEALTHY',
      workloadType: 'POD',
      services: {
        'shop/api.shop.svc.cluster.local': [
          { servicePort: 80, targetPort: 8080, appProtocol: 'HTTP2' },
        ],
      },
      waypoint: {
        destination: { kind: 'address', network: '', address: '10.1.0.7' },
        hboneMtlsPort: 15008,
      },
      capacity: 3,
      applicationTunnel: { protocol: 'PROXY' },
    });
  });

  it('decodes an authorization encoded by protoc, with presence as google.protobuf.Empty', () => {
    const bytes = protocEncode(
      'istio.security.Authorization',
      `name: "istio_converted_static_strict" namespace: "istio-system" scope: WORKLOAD_SELECTOR action: DENY
       rules { clauses { matches { not_principals { presence {} } source_ips { address: "\\n\\000\\000\\000" length: 8 } destination_ports: 8080 service_accounts { namespace: "ns" serviceAccount: "sa" } } } }`,
    );
    expect(decodeAuthorization(bytes)).toEqual({
      valid: true,
      value: {
        name: 'istio_converted_static_strict',
        namespace: 'istio-system',
        scope: 'WORKLOAD_SELECTOR',
        action: 'DENY',
        dryRun: false,
        rules: [
          {
            clauses: [
              {
                matches: [
                  emptyMatch({
                    notPrincipals: [{ kind: 'presence' }],
                    sourceIps: [{ address: '10.0.0.0', prefixLength: 8 }],
                    destinationPorts: [8080],
                    serviceAccounts: [{ namespace: 'ns', serviceAccount: 'sa' }],
                  }),
                ],
              },
            ],
          },
        ],
      },
    });
  });

  it('applies a whole DeltaDiscoveryResponse encoded by protoc, pushed over gRPC to a client', async () => {
    const cp = await FakeControlPlane.start();
    cleanups.push(() => cp.destroy());
    const client = startClient(cp.address);
    cleanups.push(() => client.close());
    await client.ready();
    const bytes = protocEncode(
      'envoy.service.discovery.v3.DeltaDiscoveryResponse',
      `type_url: "type.googleapis.com/istio.workload.Address"
       nonce: "from-protoc"
       resources {
         name: "Kubernetes//Pod/shop/api-0" version: "7"
         resource { [type.googleapis.com/istio.workload.Address] { ${WORKLOAD_TEXT} } }
       }`,
    );
    const acked = new Promise((r) => client.once('ack', r));
    cp.pushBytes(bytes);
    expect(await acked).toEqual({ typeUrl: addressType.typeUrl, nonce: 'from-protoc' });
    const held = client.get(addressType, 'Kubernetes//Pod/shop/api-0');
    expect(held?.version).toBe('7');
    expect(held?.value.kind === 'workload' && held.value.workload.addresses).toEqual([
      '10.1.0.5',
      'fd00::5',
    ]);
  });

  it('encodes workloads and services that protoc --decode reads back field by field', () => {
    const text = protocDecode(
      'istio.workload.Address',
      encodeAddress(
        workload(5, { addresses: ['10.0.0.5', 'fd00::5'], capacity: 4, trustDomain: 'td.example' }),
      ),
    );
    expect(text).toContain('uid: "Kubernetes//Pod/default/pod-5"');
    expect(text).toContain('addresses: "\\n\\000\\000\\005"');
    expect(text).toContain('tunnel_protocol: HBONE');
    expect(text).toContain('workload_type: POD');
    expect(text).toContain('trust_domain: "td.example"');
    expect(text).toMatch(/capacity \{\n\s+value: 4\n\s+\}/);
    expect(text).toMatch(
      /key: "default\/app.default.svc.cluster.local"\n\s+value \{\n\s+ports \{\n\s+service_port: 80\n\s+target_port: 8080\n\s+app_protocol: HTTP11/,
    );
  });

  it('encodes policies that protoc --decode reads back', () => {
    const text = protocDecode(
      'istio.security.Authorization',
      encodeAuthorization(
        policy('p', {
          action: 'DENY',
          rules: [
            {
              clauses: [
                {
                  matches: [
                    emptyMatch({
                      notPrincipals: [{ kind: 'presence' }],
                      principals: [{ kind: 'prefix', value: 'td/' }],
                    }),
                  ],
                },
              ],
            },
          ],
        }),
      ),
    );
    expect(text).toContain('action: DENY');
    expect(text).toMatch(/not_principals \{\n\s+presence \{\n\s+\}/);
    expect(text).toMatch(/principals \{\n\s+prefix: "td\/"/);
  });

  it('encodes the initial request node so protoc reads id and metadata', () => {
    const info = buildNode(node);
    const bytes = envoy.service.discovery.v3.DeltaDiscoveryRequest.encode({
      node: { id: info.id, metadata: toProtoStruct(info.metadata) },
      typeUrl: addressType.typeUrl,
      initialResourceVersions: { a: '1' },
    }).finish();
    const text = protocDecode('envoy.service.discovery.v3.DeltaDiscoveryRequest', bytes);
    expect(text).toContain(
      'id: "ztunnel~10.1.0.9~ztunnel-abc.istio-system~istio-system.svc.cluster.local"',
    );
    expect(text).toMatch(/key: "INSTANCE_IPS"\n\s+value \{\n\s+string_value: "10.1.0.9"/);
    expect(text).toMatch(/initial_resource_versions \{\n\s+key: "a"\n\s+value: "1"/);
  });
});
