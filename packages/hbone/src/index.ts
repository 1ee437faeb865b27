export {
  type Authority,
  formatAuthority,
  parseAuthority,
  tryParseAuthority,
} from './authority.js';
export {
  type ClientEvents,
  ClientTunnel,
  type ConnectOptions,
  HBONE_PORT,
  HboneClient,
  type HboneClientOptions,
  type NextHop,
  type SocketFactory,
} from './client.js';
export {
  HBONE_ERROR_CODES,
  HboneError,
  type HboneErrorCode,
  h2CodeName,
  toHboneError,
} from './errors.js';
export {
  formatForwarded,
  newTraceparent,
} from './headers.js';
export {
  type ConnectDecision,
  type ConnectFunction,
  type ConnectHandler,
  type ConnectHeaders,
  type ConnectRequest,
  type DialTarget,
  defaultConnect,
  HboneServer,
  type HboneServerOptions,
  type PeerInfo,
  type RefusedInfo,
  type ServerCertificateOption,
  type ServerEvents,
  ServerTunnel,
  type TunnelCloseInfo,
} from './server.js';
export { type Http2Tuning, TUNNEL_HIGH_WATER_MARK } from './settings.js';
export { Splice, type SpliceResult } from './splice.js';
export { cachedSecureContext, HBONE_CIPHER_SUITES, spiffeIds, uriSans } from './tls.js';
