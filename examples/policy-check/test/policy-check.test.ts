import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import { runExample } from '../../run-example.js';
import { evaluateAll, loadYamlList, type SampleConnection, type Workload } from '../src/check.js';

const dir = fileURLToPath(new URL('..', import.meta.url));
const tmp = mkdtempSync(join(tmpdir(), 'policy-check-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

describe('policy-check', () => {
  it('decides every sample connection as its expectation says, and exits 0', async () => {
    const { code, stdout, stderr } = await runExample(dir);
    expect(stderr).toBe('');
    expect(code).toBe(0);
    expect(stdout).toContain('10 of 10 decisions as expected');
    expect(stdout).not.toContain('✗');
    // The L7 rule is reported as dropped, with the field that caused it.
    expect(stdout).toMatch(
      /warning WARN_RBAC_L7_RULE_DROPPED: .*shop\/api-allow-frontend: spec\.rules\[1\]\.to\[0\]\.operation\.methods/,
    );
    expect(stdout).toContain('warning WARN_RBAC_DRY_RUN_NOT_SENT');
    // Each deny names the deciding policy in ztunnel's words.
    expect(stdout).toMatch(
      /✓ DENY {2}the legacy batch job\n.*\n\s+explicitly denied by: shop\/deny-legacy/,
    );
    expect(stdout).toMatch(
      /✓ DENY {2}plaintext to the db \(STRICT\)\n.*\n\s+explicitly denied by: istio-system\/istio_converted_static_strict/,
    );
    expect(stdout).toMatch(
      /✓ DENY {2}frontend on the api's debug port\n.*\n\s+allow policies exist, but none allowed/,
    );
  });

  it('reports what a dry-run policy would change when dry-run forwarding is on', async () => {
    const { code, stdout } = await runExample(dir, ['--enable-dry-run']);
    expect(code).toBe(0);
    expect(stdout).toContain('5 policies (1 dry-run)');
    expect(stdout).toMatch(
      /✓ ALLOW the ingress gateway calls the api\n.*\n.*allowed by: shop\/api-allow-frontend\n\s+dry-run: would deny \(shop\/audit-foreign\)/,
    );
    expect(stdout).not.toContain('WARN_RBAC_DRY_RUN_NOT_SENT');
  });

  it('exits 1 and marks the connection when a decision differs from its expectation', async () => {
    const file = join(tmp, 'wrong.yaml');
    writeFileSync(
      file,
      `- name: legacy job, wrongly expected to pass
  from: {identity: spiffe://cluster.local/ns/shop/sa/legacy-batch, ip: 10.1.0.9}
  to: {workload: shop/api, port: 8080}
  expect: allow
`,
    );
    const { code, stdout } = await runExample(dir, ['--connections', file]);
    expect(code).toBe(1);
    expect(stdout).toContain('✗ DENY  legacy job, wrongly expected to pass (expected allow)');
    expect(stdout).toContain('0 of 1 decisions as expected');
  });

  it('exits 2 with the error code when a manifest is malformed', async () => {
    const file = join(tmp, 'bad.yaml');
    writeFileSync(
      file,
      'apiVersion: security.istio.io/v1\nkind: AuthorizationPolicy\nmetadata: {name: x, namespace: shop}\nspec: {action: AUDIT}\n',
    );
    const { code, stderr } = await runExample(dir, ['--policies', file]);
    expect(code).toBe(2);
    expect(stderr).toMatch(/^policy-check: ERR_RBAC_UNSUPPORTED_ACTION: /);
  });

  it('gives the same verdicts in JSON as the library computes', async () => {
    const { code, stdout } = await runExample(dir, ['--json']);
    expect(code).toBe(0);
    const json = JSON.parse(stdout) as {
      verdicts: { connection: { name: string }; decision: { allowed: boolean; policy?: string } }[];
    };
    const direct = evaluateAll(
      [join(dir, 'policies')],
      loadYamlList<Workload>(join(dir, 'workloads.yaml')),
      loadYamlList<SampleConnection>(join(dir, 'connections.yaml')),
    );
    expect(
      json.verdicts.map((v) => [v.connection.name, v.decision.allowed, v.decision.policy]),
    ).toEqual(
      direct.verdicts.map((v) => [v.connection.name, v.decision.allowed, v.decision.policy]),
    );
    expect(direct.verdicts.every((v) => v.asExpected)).toBe(true);
  });
});
