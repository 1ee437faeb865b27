export type * from './types.js';
export {
  addressType,
  decodeAddress,
  encodeAddress,
  addressName,
  addressAliases,
  ADDRESS_TYPE_URL,
} from './address.js';
export {
  authorizationType,
  decodeAuthorization,
  encodeAuthorization,
  AUTHORIZATION_TYPE_URL,
} from './authorization.js';
export {
  DeltaAdsClient,
  DELTA_ADS_PATH,
  type DeltaAdsClientOptions,
  type DeltaAdsClientEvents,
  type HeldResource,
  type ResourceChange,
  type RejectedResource,
  type AckEvent,
  type NackEvent,
  type DisconnectEvent,
  type TerminationReason,
  type XdsCounters,
} from './client.js';
export { buildNode, type NodeOptions, type NodeInfo, type JsonValue } from './node.js';
export type { DecodeResult, XdsResourceType, ResourceValue } from './resource-type.js';
export { ipFromBytes, ipToBytes } from './ip.js';
export { XdsError, XDS_ERROR_CODES, type XdsErrorCode } from './errors.js';
