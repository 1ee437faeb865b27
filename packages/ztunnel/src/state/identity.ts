import { IstioIdentity } from '@mesh/spiffe';
import type { Workload } from '@mesh/xds-client';

/**
 * A workload's SPIFFE identity. The local config applies no defaults, so an empty trust domain
 * or service account falls back to the proxy's trust domain and `default`, as xDS would.
 */
export function workloadIdentity(w: Workload, fallbackTrustDomain: string): IstioIdentity {
  return IstioIdentity.of({
    trustDomain: w.trustDomain || fallbackTrustDomain,
    namespace: w.namespace,
    serviceAccount: w.serviceAccount || 'default',
  });
}
