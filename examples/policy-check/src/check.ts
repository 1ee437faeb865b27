// The example's logic, kept apart from the command line so the test can call it too.
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import {
  type Authorization,
  loadPolicyDocuments,
  type MtlsMode,
  mtlsPolicyKeys,
  PolicyStore,
  type RbacDecision,
  type RbacWarning,
  selectorMatches,
  staticStrictPolicy,
} from '@mesh/l4-rbac';
import { parse } from 'yaml';

export interface Workload {
  name: string;
  namespace: string;
  ip: string;
  labels: Record<string, string>;
  mtls: MtlsMode;
}

export interface SampleConnection {
  name: string;
  from: { identity?: string; ip: string };
  to: { workload: string; port: number };
  expect?: 'allow' | 'deny';
}

export interface Options {
  rootNamespace?: string;
  enableDryRun?: boolean;
}

/** Every `*.yaml`/`*.yml` file of a directory (sorted), or the file itself. */
export function yamlFiles(path: string): string[] {
  if (!statSync(path).isDirectory()) return [path];
  return readdirSync(path)
    .filter((f) => /\.ya?ml$/.test(f))
    .sort()
    .map((f) => join(path, f));
}

/** Translate manifests the way istiod does for ztunnel: L4 policies plus warnings. */
export function loadPolicies(paths: string[], options: Options = {}) {
  const policies: Authorization[] = [];
  const selectors = new Map<string, Record<string, string>>();
  const warnings: RbacWarning[] = [];
  for (const file of paths.flatMap(yamlFiles)) {
    const loaded = loadPolicyDocuments(readFileSync(file, 'utf8'), { ...options, source: file });
    policies.push(...loaded.policies);
    for (const [k, v] of loaded.selectors) selectors.set(k, v);
    warnings.push(...loaded.warnings);
  }
  return { policies, selectors, warnings };
}

export function loadYamlList<T>(file: string): T[] {
  const value = parse(readFileSync(file, 'utf8')) as unknown;
  if (!Array.isArray(value)) throw new Error(`${file}: expected a YAML list`);
  return value as T[];
}

/**
 * What istiod computes per workload: the selector policies (of its namespace and of the root
 * namespace) whose `matchLabels` all match, plus the STRICT policy key when mTLS is STRICT.
 */
export function attachedPolicies(
  w: Workload,
  selectors: Map<string, Record<string, string>>,
  rootNamespace = 'istio-system',
): string[] {
  const keys = [...selectors]
    .filter(([key, selector]) => {
      const ns = key.slice(0, key.indexOf('/'));
      return (ns === w.namespace || ns === rootNamespace) && selectorMatches(selector, w.labels);
    })
    .map(([key]) => key);
  return [...keys, ...mtlsPolicyKeys(w.mtls ?? 'UNSET', undefined, rootNamespace)];
}

export interface Verdict {
  connection: SampleConnection;
  workload: Workload;
  decision: RbacDecision;
  /** `undefined` when the connection states no expectation. */
  asExpected?: boolean;
}

export function evaluateAll(
  policyPaths: string[],
  workloads: Workload[],
  connections: SampleConnection[],
  options: Options = {},
): { verdicts: Verdict[]; warnings: RbacWarning[]; policies: Authorization[] } {
  const rootNamespace = options.rootNamespace ?? 'istio-system';
  const { policies, selectors, warnings } = loadPolicies(policyPaths, options);
  const store = new PolicyStore();
  // The static STRICT policy is not a manifest: istiod synthesises it.
  const strict = workloads.some((w) => w.mtls === 'STRICT');
  store.replaceAll(strict ? [...policies, staticStrictPolicy(rootNamespace)] : policies);

  const byName = new Map(workloads.map((w) => [`${w.namespace}/${w.name}`, w]));
  const verdicts = connections.map((connection): Verdict => {
    const workload = byName.get(connection.to.workload);
    if (!workload) throw new Error(`${connection.name}: no workload ${connection.to.workload}`);
    const decision = store.evaluate({
      identity: connection.from.identity ?? null,
      sourceIp: connection.from.ip,
      destination: {
        namespace: workload.namespace,
        authorizationPolicies: attachedPolicies(workload, selectors, rootNamespace),
      },
      destinationIp: workload.ip,
      destinationPort: connection.to.port,
    });
    const asExpected =
      connection.expect === undefined
        ? undefined
        : (connection.expect === 'allow') === decision.allowed;
    return { connection, workload, decision, asExpected };
  });
  return { verdicts, warnings, policies };
}

export function formatVerdict(v: Verdict): string[] {
  const mark = v.asExpected === undefined ? ' ' : v.asExpected ? '✓' : '✗';
  const verdict = v.decision.allowed ? 'ALLOW' : 'DENY ';
  const c = v.connection;
  const lines = [
    `${mark} ${verdict} ${c.name}${v.asExpected === false ? ` (expected ${c.expect})` : ''}`,
    `          ${c.from.identity ?? 'plaintext'} ${c.from.ip} -> ${c.to.workload} ${v.workload.ip}:${c.to.port}`,
    `          ${v.decision.message}`,
  ];
  const dry = v.decision.dryRun;
  if (dry?.changed) {
    lines.push(
      `          dry-run: would ${dry.allowed ? 'allow' : 'deny'} (${dry.changedBy.join(', ')})`,
    );
  }
  return lines;
}
