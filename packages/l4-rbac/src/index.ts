export { type CompiledPolicy, compilePolicy, type PolicyGuard, stringMatches } from './compile.js';
export {
  type ApplicablePolicies,
  type DecisionMessage,
  type DryRunOutcome,
  decide,
  NONE_ALLOWED,
  type RbacDecision,
  type RbacReason,
} from './decide.js';
export {
  RBAC_ERROR_CODES,
  RBAC_WARNING_CODES,
  RbacError,
  type RbacErrorCode,
  type RbacWarning,
  type RbacWarningCode,
} from './errors.js';
export {
  istioStringMatch,
  L4_WHEN_KEYS,
  type LoadedPolicies,
  loadPolicyDocuments,
  type TranslatedPolicy,
  type TranslateOptions,
  translateAuthorizationPolicy,
} from './istio.js';
export { selectorMatches } from './labels.js';
export {
  localConfigYamlTags,
  parseLocalConfigPolicies,
  policyFromLocalConfig,
  TaggedStringMatch,
} from './local-config.js';
export type * from './model.js';
export {
  type PeerAuthentication,
  parsePeerAuthentication,
  resolveWorkloadMtls,
  type WorkloadMtls,
} from './peer-authentication.js';
export {
  type DestinationWorkload,
  type MatchContext,
  matchContext,
  type PeerIdentity,
  type RbacRequest,
} from './request.js';
export {
  type ApplicableSet,
  type PolicyBatch,
  type PolicyChange,
  PolicyStore,
  type PolicyStoreEvents,
  type PolicyUpdateResult,
  policyKey,
} from './store.js';
export {
  type MtlsMode,
  mtlsPolicyKeys,
  PEER_AUTHENTICATION_POLICY_PREFIX,
  type PeerAuthenticationInput,
  peerAuthenticationPolicy,
  STATIC_STRICT_POLICY_NAME,
  staticStrictPolicy,
} from './strict.js';
export { emptyMatch, type Validated, validateAuthorization } from './validate.js';
