import { selectorMatches } from './labels.js';
import { fail, istioSecurityHeader, labels, obj } from './manifest.js';
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
  const {
    name,
    namespace,
    metadata: meta,
    spec: rawSpec,
  } = istioSecurityHeader(manifest, 'PeerAuthentication', options.defaultNamespace);
  const at = `PeerAuthentication ${namespace}/${name}: spec`;
  const spec = obj(rawSpec, at, ['selector', 'mtls', 'portLevelMtls']);
  const selector = labels(
    obj(spec.selector, `${at}.selector`, ['matchLabels']).matchLabels,
    `${at}.selector.matchLabels`,
  );
  const portLevelMtls: Record<number, MtlsMode> = {};
  const ports = obj(spec.portLevelMtls, `${at}.portLevelMtls`);
  for (const [port, value] of Object.entries(ports)) {
    const n = Number(port);
    if (!Number.isInteger(n) || n < 1 || n > 65535)
      fail(`${at}.portLevelMtls.${port}`, 'is not a port');
    portLevelMtls[n] = mode(
      obj(value, `${at}.portLevelMtls.${port}`, ['mode']).mode,
      `${at}.portLevelMtls.${port}.mode`,
    );
  }
  const created = meta.creationTimestamp;
  return {
    name,
    namespace,
    ...(Object.keys(selector).length > 0 ? { selector } : {}),
    mode: mode(obj(spec.mtls, `${at}.mtls`, ['mode']).mode, `${at}.mtls.mode`),
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
