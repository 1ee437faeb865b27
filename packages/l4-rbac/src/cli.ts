import { readFile } from 'node:fs/promises';
import { parseArgs } from 'node:util';
import type { RbacDecision } from './decide.js';
import { RbacError, type RbacWarning } from './errors.js';
import { loadPolicyDocuments } from './istio.js';
import { selectorMatches } from './labels.js';
import type { Authorization, Match } from './model.js';
import {
  type PeerAuthentication,
  resolveWorkloadMtls,
  type WorkloadMtls,
} from './peer-authentication.js';
import { PolicyStore } from './store.js';
import { STATIC_STRICT_POLICY_NAME, staticStrictPolicy } from './strict.js';

export const USAGE = `Usage: mesh-policy-check [options] <file>...

Decides one connection against Istio AuthorizationPolicy manifests the way ztunnel does.
Files hold YAML documents (several per file; "-" reads stdin): AuthorizationPolicy and
PeerAuthentication (security.istio.io/v1, v1beta1), kind: List, or a ztunnel local config
with policies[].

Source (the peer):
  --source-identity <id>   SPIFFE ID (spiffe://td/ns/x/sa/y or td/ns/x/sa/y); omit for plaintext
  --source-ip <ip>         peer IP (needed only when a policy matches on source IPs)
Destination:
  --dest-namespace <ns>    namespace of the destination workload (required)
  --dest-labels <k=v,...>  workload labels; attaches selector policies whose matchLabels match
  --dest-policy <ns/name>  attach a policy key to the workload (repeatable)
  --dest-ip <ip>           destination pod IP (needed only when a policy matches on it)
  --dest-port <port>       resolved target port (required)
  --strict                 effective mTLS mode is STRICT: attach ${STATIC_STRICT_POLICY_NAME}
                           (otherwise PeerAuthentication documents in the files decide it)
Translation:
  --root-namespace <ns>    Istio root namespace (default istio-system)
  --enable-dry-run         forward istio.io/dry-run policies (istiod's
                           AMBIENT_ENABLE_DRY_RUN_AUTHORIZATION_POLICY)
Output:
  --json                   print the decision as JSON
  -q, --quiet              do not print warnings
  -h, --help

Exit status: 0 allowed, 1 denied, 2 usage or input error.
`;

export interface CliIo {
  stdout: { write(text: string): unknown };
  stderr: { write(text: string): unknown };
  /** Read when a file argument is "-". */
  readStdin?: () => Promise<string>;
}

class UsageError extends Error {}

const HINT = 'Run mesh-policy-check --help for usage.\n';

const IPV4_PLACEHOLDER = '0.0.0.0';

function usesField(policies: Authorization[], fields: Array<keyof Match>): string | undefined {
  for (const p of policies) {
    for (const r of p.rules) {
      for (const c of r.clauses) {
        for (const m of c.matches) {
          if (fields.some((f) => (m[f] as unknown[]).length > 0)) return `${p.namespace}/${p.name}`;
        }
      }
    }
  }
  return undefined;
}

function parseLabels(text: string): Record<string, string> {
  const labels: Record<string, string> = {};
  for (const pair of text.split(',').filter(Boolean)) {
    const eq = pair.indexOf('=');
    if (eq <= 0) throw new UsageError(`--dest-labels: ${JSON.stringify(pair)} is not key=value`);
    labels[pair.slice(0, eq)] = pair.slice(eq + 1);
  }
  return labels;
}

function formatWarning(w: RbacWarning): string {
  return `warning ${w.code}: ${w.message}\n`;
}

function describe(decision: RbacDecision, attached: string[], mtls?: WorkloadMtls): string {
  const lines = [`${decision.allowed ? 'ALLOW' : 'DENY'}: ${decision.message}`];
  lines.push(`  policies applied: ${decision.applied}`);
  if (mtls) {
    const from = mtls.workloadPolicy
      ? ` (workload PeerAuthentication ${mtls.workloadPolicy.namespace}/${mtls.workloadPolicy.name})`
      : '';
    lines.push(`  mTLS mode: ${mtls.mode}${from}`);
  }
  if (attached.length > 0) lines.push(`  attached to workload: ${attached.join(', ')}`);
  if (decision.dryRun) {
    const d = decision.dryRun;
    const matched = [...d.denyMatched, ...d.allowMatched];
    lines.push(
      `  dry-run: would ${d.allowed ? 'allow' : 'deny'}${d.changed ? ' (verdict would change)' : ''}${
        matched.length ? `; matched ${matched.join(', ')}` : ''
      }`,
    );
  }
  if (decision.unknownPolicies) {
    lines.push(`  unknown policy keys skipped: ${decision.unknownPolicies.join(', ')}`);
  }
  return `${lines.join('\n')}\n`;
}

/** Runs the CLI; resolves to the exit status instead of exiting, so it can be embedded and tested. */
export async function runCli(argv: string[], io: CliIo): Promise<number> {
  try {
    const { values, positionals } = parseArgs({
      args: argv,
      allowPositionals: true,
      strict: true,
      options: {
        'source-identity': { type: 'string' },
        'source-ip': { type: 'string' },
        'dest-namespace': { type: 'string' },
        'dest-labels': { type: 'string' },
        'dest-policy': { type: 'string', multiple: true },
        'dest-ip': { type: 'string' },
        'dest-port': { type: 'string' },
        strict: { type: 'boolean' },
        'root-namespace': { type: 'string' },
        'enable-dry-run': { type: 'boolean' },
        json: { type: 'boolean' },
        quiet: { type: 'boolean', short: 'q' },
        help: { type: 'boolean', short: 'h' },
      },
    });
    if (values.help) {
      io.stdout.write(USAGE);
      return 0;
    }
    if (positionals.length === 0) throw new UsageError('no policy files given');
    const namespace = values['dest-namespace'];
    if (!namespace) throw new UsageError('--dest-namespace is required');
    const portText = values['dest-port'];
    if (!portText || !/^\d+$/.test(portText) || Number(portText) > 65535) {
      throw new UsageError('--dest-port must be a port number from 0 to 65535');
    }
    const rootNamespace = values['root-namespace'] ?? 'istio-system';
    let identity = values['source-identity'];
    if (identity !== undefined && !identity.startsWith('spiffe://'))
      identity = `spiffe://${identity}`;

    const policies: Authorization[] = [];
    const selectors = new Map<string, Record<string, string>>();
    const peerAuthentications: PeerAuthentication[] = [];
    const warnings: RbacWarning[] = [];
    for (const file of positionals) {
      let text: string;
      try {
        text =
          file === '-'
            ? await (io.readStdin?.() ?? Promise.resolve(''))
            : await readFile(file, 'utf8');
      } catch (err) {
        throw new UsageError(`cannot read ${file}: ${(err as Error).message}`);
      }
      const loaded = loadPolicyDocuments(text, {
        source: file,
        rootNamespace,
        enableDryRun: values['enable-dry-run'] ?? false,
      });
      policies.push(...loaded.policies);
      peerAuthentications.push(...loaded.peerAuthentications);
      for (const [k, v] of loaded.selectors) selectors.set(k, v);
      warnings.push(...loaded.warnings);
    }
    const attached = [...(values['dest-policy'] ?? [])];
    const labels = values['dest-labels'] !== undefined ? parseLabels(values['dest-labels']) : {};
    for (const p of policies) {
      const key = `${p.namespace}/${p.name}`;
      const selector = selectors.get(key);
      // istiod attaches selector policies of the workload's namespace and of the root namespace.
      if (
        selector &&
        (p.namespace === namespace || p.namespace === rootNamespace) &&
        selectorMatches(selector, labels)
      ) {
        attached.push(key);
      }
    }
    let mtls: WorkloadMtls | undefined;
    if (peerAuthentications.length > 0 || values.strict) {
      // istiod always publishes the static STRICT policy; workloads opt in through their list.
      policies.push(staticStrictPolicy(rootNamespace));
      mtls = resolveWorkloadMtls(peerAuthentications, { namespace, labels }, rootNamespace);
      if (values.strict && mtls.mode !== 'STRICT') {
        mtls = { mode: 'STRICT', keys: [`${rootNamespace}/${STATIC_STRICT_POLICY_NAME}`] };
      }
      if (mtls.portPolicy) policies.push(mtls.portPolicy);
      attached.push(...mtls.keys);
    }

    const store = new PolicyStore();
    const update = store.replaceAll(policies);
    warnings.push(...update.warnings);
    const destination = { namespace, authorizationPolicies: attached };
    const applicable = store.policiesFor(destination).policies;
    for (const [flag, fields] of [
      ['--source-ip', ['sourceIps', 'notSourceIps']],
      ['--dest-ip', ['destinationIps', 'notDestinationIps']],
    ] as const) {
      const given = flag === '--source-ip' ? values['source-ip'] : values['dest-ip'];
      const needer = given === undefined ? usesField(applicable, [...fields]) : undefined;
      if (needer)
        throw new UsageError(`policy ${needer} matches on ${flag.slice(2)}; give ${flag}`);
    }
    const decision = store.evaluate({
      identity: identity ?? null,
      sourceIp: values['source-ip'] ?? IPV4_PLACEHOLDER,
      destination,
      destinationIp: values['dest-ip'] ?? IPV4_PLACEHOLDER,
      destinationPort: Number(portText),
    });
    for (const key of decision.unknownPolicies ?? []) {
      warnings.push({
        code: 'WARN_RBAC_UNKNOWN_POLICY',
        message: `the workload lists ${key}, which no file defines; skipped`,
        policy: key,
      });
    }
    if (!values.quiet) for (const w of warnings) io.stderr.write(formatWarning(w));
    io.stdout.write(
      values.json
        ? `${JSON.stringify({ ...decision, attached, mtlsMode: mtls?.mode, warnings }, null, 2)}\n`
        : describe(decision, attached, mtls),
    );
    return decision.allowed ? 0 : 1;
  } catch (err) {
    if (err instanceof UsageError) {
      io.stderr.write(`mesh-policy-check: ${err.message}\n${HINT}`);
      return 2;
    }
    if (err instanceof RbacError) {
      io.stderr.write(`mesh-policy-check: ${err.code}: ${err.message}\n`);
      return 2;
    }
    if (
      err instanceof TypeError &&
      (err as NodeJS.ErrnoException).code?.startsWith('ERR_PARSE_ARGS')
    ) {
      io.stderr.write(`mesh-policy-check: ${err.message}\n${HINT}`);
      return 2;
    }
    throw err;
  }
}
