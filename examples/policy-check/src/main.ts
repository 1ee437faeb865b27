// policy-check: which sample connections do these AuthorizationPolicies allow?
//
//   pnpm --filter @mesh/example-policy-check start
//   pnpm --filter @mesh/example-policy-check start -- --policies my-policies/ --connections mine.yaml
//
// Exit status: 0 every decision as expected, 1 some decision differs, 2 bad input.
import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { RbacError } from '@mesh/l4-rbac';
import {
  evaluateAll,
  formatVerdict,
  loadYamlList,
  type SampleConnection,
  type Workload,
} from './check.js';

const here = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const { values: args } = parseArgs({
  options: {
    policies: { type: 'string', multiple: true },
    workloads: { type: 'string', default: resolve(here, 'workloads.yaml') },
    connections: { type: 'string', default: resolve(here, 'connections.yaml') },
    'root-namespace': { type: 'string', default: 'istio-system' },
    'enable-dry-run': { type: 'boolean', default: false },
    json: { type: 'boolean', default: false },
  },
});

try {
  const { verdicts, warnings, policies } = evaluateAll(
    args.policies ?? [resolve(here, 'policies')],
    loadYamlList<Workload>(args.workloads),
    loadYamlList<SampleConnection>(args.connections),
    { rootNamespace: args['root-namespace'], enableDryRun: args['enable-dry-run'] },
  );
  if (args.json) {
    console.log(JSON.stringify({ policies, warnings, verdicts }, null, 2));
  } else {
    for (const w of warnings) console.log(`warning ${w.code}: ${w.message}`);
    console.log(
      `\n${policies.length} policies (${policies.filter((p) => p.dryRun).length} dry-run), ${verdicts.length} connections\n`,
    );
    for (const v of verdicts) console.log(formatVerdict(v).join('\n'));
    const expected = verdicts.filter((v) => v.asExpected !== undefined);
    const good = expected.filter((v) => v.asExpected).length;
    console.log(`\n${good} of ${expected.length} decisions as expected`);
  }
  process.exitCode = verdicts.some((v) => v.asExpected === false) ? 1 : 0;
} catch (err) {
  const code = err instanceof RbacError ? `${err.code}: ` : '';
  console.error(`policy-check: ${code}${(err as Error).message}`);
  process.exitCode = 2;
}
