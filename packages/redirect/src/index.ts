export {
  type AppliedRedirect,
  type ApplyRedirectOptions,
  applyRedirect,
  type RedirectBackend,
  type RedirectTarget,
  removeRedirect,
} from './apply.js';
export {
  REDIRECT_ERROR_CODES,
  RedirectError,
  type RedirectErrorCode,
  type SystemError,
} from './errors.js';
export type { CommandFailure } from './exec.js';
export { isSupported, loadError } from './native.js';
export {
  DEFAULT_RULE_OPTIONS,
  dedicatedIptablesRules,
  dedicatedNftRules,
  type IptablesRestoreInput,
  inpodIptablesRules,
  inpodNftRules,
  NFT_TABLES,
  type PolicyRouting,
  policyRouting,
  type RedirectMode,
  type RuleOptions,
  removeNftRules,
} from './rules.js';
export {
  type Capabilities,
  type Capability,
  type ConnectOptions,
  connectSocket,
  createListenSocket,
  createOutboundSocket,
  createTransparentServer,
  getMark,
  type ListenSocketOptions,
  type NetnsRef,
  netnsId,
  type OriginalDestination,
  type OutboundSocketOptions,
  originalDestination,
  probeCapabilities,
  type SocketOptionsBeforeBind,
  setMark,
  socketFd,
} from './sockets.js';
