export {
  VERSION,
  Ztunnel,
  type ZtunnelAddresses,
  type ZtunnelEvents,
  type ZtunnelOptions,
} from './app.js';
export { EXIT, main } from './cli.js';
export { type LocalConfig, loadLocalConfigFile, parseLocalConfig } from './config/local-config.js';
export { type ResolveInput, resolveConfig } from './config/resolve.js';
export {
  type LogFormat,
  type LogLevel,
  type ProxyMode,
  SETTINGS,
  type SettingSpec,
  type ZtunnelConfig,
} from './config/settings.js';
export type { BindAddress, WorkloadInfo } from './config/values.js';
export { ZTUNNEL_ERROR_CODES, ZtunnelError, type ZtunnelErrorCode } from './errors.js';
