import { RbacError } from './errors.js';

/** Shape checks shared by the Kubernetes manifest readers (`ERR_RBAC_INVALID_MANIFEST`). */

export function fail(path: string, message: string): never {
  throw new RbacError('ERR_RBAC_INVALID_MANIFEST', `${path}: ${message}`);
}

export function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** A mapping (absent = empty); with `keys`, any other key is an error. */
export function obj(
  value: unknown,
  path: string,
  keys?: readonly string[],
): Record<string, unknown> {
  if (value === undefined || value === null) return {};
  if (!isObject(value)) fail(path, 'must be a mapping');
  if (keys) {
    for (const k of Object.keys(value)) {
      if (!keys.includes(k)) fail(`${path}.${k}`, 'unknown field');
    }
  }
  return value;
}

/** A list (absent = empty). */
export function arr(value: unknown, path: string): unknown[] {
  if (value === undefined || value === null) return [];
  if (!Array.isArray(value)) fail(path, 'must be a list');
  return value;
}

const ISTIO_SECURITY_VERSIONS = ['security.istio.io/v1', 'security.istio.io/v1beta1'];

export interface ManifestHeader {
  name: string;
  namespace: string;
  metadata: Record<string, unknown>;
  spec: unknown;
}

/** Checks apiVersion (security.istio.io/v1 or v1beta1), kind and metadata.name/namespace. */
export function istioSecurityHeader(
  manifest: unknown,
  kind: string,
  defaultNamespace = 'default',
): ManifestHeader {
  const m = obj(manifest, 'manifest');
  if (typeof m.apiVersion !== 'string' || !ISTIO_SECURITY_VERSIONS.includes(m.apiVersion)) {
    fail(
      'apiVersion',
      `must be one of ${ISTIO_SECURITY_VERSIONS.join(', ')}, got ${JSON.stringify(m.apiVersion)}`,
    );
  }
  if (m.kind !== kind) fail('kind', `must be ${kind}, got ${JSON.stringify(m.kind)}`);
  const metadata = obj(m.metadata, 'metadata');
  if (typeof metadata.name !== 'string' || metadata.name === '') {
    fail('metadata.name', 'is required');
  }
  const namespace = metadata.namespace ?? defaultNamespace;
  if (typeof namespace !== 'string' || namespace === '') {
    fail('metadata.namespace', 'must be a non-empty string');
  }
  return { name: metadata.name, namespace, metadata, spec: m.spec };
}

/** `matchLabels` as string pairs. */
export function labels(value: unknown, path: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(obj(value, path))) {
    if (typeof v !== 'string') fail(`${path}.${k}`, 'must be a string');
    out[k] = v;
  }
  return out;
}
