import { RbacError } from './errors.js';
import { selectorMatches } from './labels.js';
import type { Authorization } from './model.js';
import { type MtlsMode, mtlsPolicyKeys, peerAuthenticationPolicy } from './strict.js';

/** A validated `PeerAuthentication` manifest, reduced to what ambient mode reads. */
export interface PeerAuthentication {
  name: string;
  namespace: string;
  /** `spec.selector.matchLabels`; undefined (or empty) for namespace- or mesh-wide. */
  selector?: Record<string, string>;
  mode: MtlsMode;
  portLevelMtls: Record<number, MtlsMode>;
  /** `metadata.creationTimestamp`, used to let the oldest win among equals. */
  createdAt?: string;
}

const MODES: readonly MtlsMode[] = ['UNSET', 'DISABLE', 'PERMISSIVE', 'STRICT'];
const API_VERSIONS = ['security.istio.io/v1', 'security.istio.io/v1beta1'];

function fail(path: string, message: string): never {
  throw new RbacError('ERR_RBAC_INVALID_MANIFEST', `${path}: ${message}`);
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** A mapping (absent = empty); with `keys`, any other key is an error. */
function known(v: unknown, path: string, keys?: readonly string[]): Record<string, unknown> {
  if (v === undefined || v === null) return {};
  if (!isObject(v)) fail(path, 'must be a mapping');
  if (keys) {
    for (const k of Object.keys(v)) if (!keys.includes(k)) fail(`${path}.${k}`, 'unknown field');
  }
  return v;
}

function mode(v: unknown, path: string): MtlsMode {
  const m = (v ?? 'UNSET') as MtlsMode;
  if (!MODES.includes(m))
    fail(path, `must be one of ${MODES.join(', ')}, got ${JSON.stringify(v)}`);
  return m;
}

/** Validates a Kubernetes `PeerAuthentication` (security.istio.io/v1 or v1beta1). */
export function parsePeerAuthentication(
  manifest: unknown,
  options: { defaultNamespace?: string } = {},
): PeerAuthentication {
  if (!isObject(manifest)) fail('manifest', 'must be a mapping');
  if (typeof manifest.apiVersion !== 'string' || !API_VERSIONS.includes(manifest.apiVersion)) {
    fail('apiVersion', `must be one of ${API_VERSIONS.join(', ')}`);
  }
  if (manifest.kind !== 'PeerAuthentication') fail('kind', 'must be PeerAuthentication');
  const meta = known(manifest.metadata, 'metadata');
  if (typeof meta.name !== 'string' || meta.name === '') fail('metadata.name', 'is required');
  const namespace = meta.namespace ?? options.defaultNamespace ?? 'default';
  if (typeof namespace !== 'string' || namespace === '')
    fail('metadata.namespace', 'must be a string');
  const at = `PeerAuthentication ${namespace}/${meta.name}: spec`;
  const spec = known(manifest.spec, at, ['selector', 'mtls', 'portLevelMtls']);
  const labels = known(spec.selector, `${at}.selector`, ['matchLabels']).matchLabels;
  const selector: Record<string, string> = {};
  for (const [k, v] of Object.entries(known(labels, `${at}.selector.matchLabels`))) {
    if (typeof v !== 'string') fail(`${at}.selector.matchLabels.${k}`, 'must be a string');
    selector[k] = v;
  }
  const portLevelMtls: Record<number, MtlsMode> = {};
  const ports = known(spec.portLevelMtls, `${at}.portLevelMtls`);
  for (const [port, value] of Object.entries(ports)) {
    const n = Number(port);
    if (!Number.isInteger(n) || n < 1 || n > 65535)
      fail(`${at}.portLevelMtls.${port}`, 'is not a port');
    portLevelMtls[n] = mode(
      known(value, `${at}.portLevelMtls.${port}`, ['mode']).mode,
      `${at}.portLevelMtls.${port}.mode`,
    );
  }
  const created = meta.creationTimestamp;
  return {
    name: meta.name,
    namespace,
    ...(Object.keys(selector).length > 0 ? { selector } : {}),
    mode: mode(known(spec.mtls, `${at}.mtls`, ['mode']).mode, `${at}.mtls.mode`),
    portLevelMtls,
    ...(typeof created === 'string' ? { createdAt: created } : {}),
  };
}

/** Oldest first (creation time, then namespace/name), so the oldest wins among equals. */
function oldest(list: PeerAuthentication[]): PeerAuthentication | undefined {
  return [...list].sort(
    (a, b) =>
      (a.createdAt ?? '').localeCompare(b.createdAt ?? '') ||
      `${a.namespace}/${a.name}`.localeCompare(`${b.namespace}/${b.name}`),
  )[0];
}

export interface WorkloadMtls {
  /** The effective mode: workload → namespace → mesh, UNSET inheriting; PERMISSIVE by default. */
  mode: Exclude<MtlsMode, 'UNSET'>;
  /** The workload-level PeerAuthentication that applies, if any. */
  workloadPolicy?: PeerAuthentication;
  /** The per-port DENY policy istiod derives for this workload, if any. */
  portPolicy?: Authorization;
  /** What istiod lists in the workload's `authorizationPolicies` for mTLS. */
  keys: string[];
}

/**
 * Resolves PeerAuthentication for one workload as istiod does for ambient (§5.6): the
 * workload-level policy (selector matching the labels, in the workload's namespace) over the
 * namespace-level one over the mesh-level one (root namespace, no selector); UNSET inherits;
 * among several at one level the oldest wins. Returns the keys to attach (the static STRICT
 * policy, or the per-port policy that replaces it).
 */
export function resolveWorkloadMtls(
  peerAuthentications: readonly PeerAuthentication[],
  workload: { namespace: string; labels?: Record<string, string> },
  rootNamespace = 'istio-system',
): WorkloadMtls {
  const labels = workload.labels ?? {};
  const mesh = oldest(
    peerAuthentications.filter((p) => p.namespace === rootNamespace && !p.selector),
  );
  const ns = oldest(
    peerAuthentications.filter(
      (p) => p.namespace === workload.namespace && !p.selector && p.namespace !== rootNamespace,
    ),
  );
  const wl = oldest(
    peerAuthentications.filter(
      (p) =>
        p.namespace === workload.namespace && p.selector && selectorMatches(p.selector, labels),
    ),
  );
  let effective: Exclude<MtlsMode, 'UNSET'> = 'PERMISSIVE';
  for (const level of [mesh, ns, wl]) {
    if (level && level.mode !== 'UNSET') effective = level.mode;
  }
  const portPolicy =
    wl && wl.namespace !== rootNamespace
      ? peerAuthenticationPolicy({
          name: wl.name,
          namespace: wl.namespace,
          mode: effective,
          portLevelMtls: wl.portLevelMtls,
        })
      : undefined;
  return {
    mode: effective,
    ...(wl ? { workloadPolicy: wl } : {}),
    ...(portPolicy ? { portPolicy } : {}),
    keys: mtlsPolicyKeys(effective, portPolicy, rootNamespace),
  };
}
