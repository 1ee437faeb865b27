import diagnosticsChannel from 'node:diagnostics_channel';
import {
  type DecisionMessage,
  loadPolicyDocuments,
  PolicyStore,
  type RbacRequest,
} from '@mesh/l4-rbac';

// Kubernetes manifests, translated the way istiod translates them for ztunnel.
const manifests = (allowedPort: number) => `
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: allow-web, namespace: shop}
spec:
  action: ALLOW
  rules:
  - from: [{source: {principals: ["cluster.local/ns/shop/sa/web"]}}]
    to: [{operation: {ports: ["${allowedPort}"]}}]
---
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: no-legacy-writes, namespace: shop}
spec:
  action: DENY
  rules:
  - from: [{source: {namespaces: ["legacy"]}}]
    to: [{operation: {ports: ["8080"], methods: ["POST"]}}]
`;
const { policies, warnings } = loadPolicyDocuments(manifests(8080));
// ztunnel cannot see HTTP methods: the DENY drops `methods` and denies all of `legacy` on 8080.
for (const w of warnings) console.log(w.code); // WARN_RBAC_L7_FIELD_IGNORED

const store = new PolicyStore();
store.replaceAll(policies);

// Every decision is also published for logging, when someone listens.
diagnosticsChannel.subscribe('mesh:rbac:decision', (m) => {
  const { request, decision } = m as DecisionMessage;
  console.log(`  [channel] ${String(request.identity)} -> ${decision.reason}`);
});

const fromWeb: RbacRequest = {
  identity: 'spiffe://cluster.local/ns/shop/sa/web', // null for plaintext
  sourceIp: '10.1.0.7',
  destination: { namespace: 'shop' }, // + authorizationPolicies: selector policy keys
  destinationIp: '10.1.0.5',
  destinationPort: 8080, // the resolved target port
};
const fromLegacy = { ...fromWeb, identity: 'spiffe://cluster.local/ns/legacy/sa/batch' };
console.log(store.evaluate(fromWeb).message); // allowed by: shop/allow-web
console.log(store.evaluate(fromLegacy).message); // explicitly denied by: shop/no-legacy-writes

// Late rejection: after a policy change, re-check the live connections.
store.replaceAll(loadPolicyDocuments(manifests(9090)).policies);
const nowDenied = store.recheck([fromWeb]);
console.log(
  'now denied:',
  nowDenied.map((r) => r.decision?.message),
); // allow policies exist, but none allowed
