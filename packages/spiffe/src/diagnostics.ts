import { channel } from 'node:diagnostics_channel';

/**
 * `node:diagnostics_channel` channels of `@mesh/spiffe`. Subscribers get plain objects;
 * nothing is published when nobody listens.
 */
export const channels = {
  /** `{ identity, serialNumber, notAfter }` after a CA signed a certificate (LocalCa). */
  issued: channel('mesh:spiffe:issued'),
  /** `{ identity, address, durationMs }` after IstioCaClient got a certificate. */
  caRequest: channel('mesh:spiffe:ca-request'),
  /** `{ identity, address, error }` when IstioCaClient failed. */
  caError: channel('mesh:spiffe:ca-error'),
  /** `{ identity, caller, peer }` when IstioCaServer served a request; `error` when it refused. */
  caServe: channel('mesh:spiffe:ca-serve'),
  /** `{ identity, serialNumber, notAfter, previousSerialNumber }` when SecretManager stored a new certificate. */
  rotated: channel('mesh:spiffe:rotated'),
  /** `{ identity, error, retryInMs }` when SecretManager failed to fetch. */
  fetchError: channel('mesh:spiffe:fetch-error'),
} as const;
