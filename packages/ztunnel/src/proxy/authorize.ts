import type { SpiffeId } from '@mesh/spiffe';
import type { Workload } from '@mesh/xds-client';

/** What policy evaluation sees of one inbound connection. */
export interface AuthorizeRequest {
  /** The destination workload (this proxy's). */
  workload: Workload;
  /** Verified peer identity; absent for plaintext (15006). */
  identity?: SpiffeId;
  sourceIp: string;
  destinationIp: string;
  /** The resolved target port, never 15008. */
  destinationPort: number;
}

export interface AuthorizeVerdict {
  allowed: boolean;
  /** ztunnel's wording: `explicitly denied by: ns/name`, `allow policies exist, but none allowed`. */
  reason: string;
}

export type Authorize = (request: AuthorizeRequest) => AuthorizeVerdict;
