export {
  ADDRESS_TYPE_URL,
  addressAliases,
  addressName,
  addressType,
  decodeAddress,
  encodeAddress,
} from './address.js';
export {
  AUTHORIZATION_TYPE_URL,
  authorizationType,
  decodeAuthorization,
  encodeAuthorization,
} from './authorization.js';
export {
  type AckEvent,
  DELTA_ADS_PATH,
  DeltaAdsClient,
  type DeltaAdsClientEvents,
  type DeltaAdsClientOptions,
  type DisconnectEvent,
  type HeldResource,
  type NackEvent,
  type RejectedResource,
  type ResourceChange,
  type TerminationReason,
  type XdsCounters,
} from './client.js';
export { XDS_ERROR_CODES, XdsError, type XdsErrorCode } from './errors.js';
export { ipFromBytes, ipToBytes } from './ip.js';
export { buildNode, type JsonValue, type NodeInfo, type NodeOptions } from './node.js';
export type { DecodeResult, ResourceValue, XdsResourceType } from './resource-type.js';
export type * from './types.js';
