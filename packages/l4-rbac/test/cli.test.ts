import { execFile, spawn } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runCli } from '../src/cli.js';

const pkg = dirname(dirname(fileURLToPath(import.meta.url)));
const fixture = (name: string) => join(pkg, 'test', 'fixtures', name);
const SOURCE_BIN = ['--conditions=@mesh/source', '--import', 'tsx', join(pkg, 'src', 'bin.ts')];

interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Runs the CLI in this process, capturing its output. */
async function runInProcess(args: string[]): Promise<Run> {
  let stdout = '';
  let stderr = '';
  const code = await runCli(args, {
    stdout: { write: (t: string) => (stdout += t) },
    stderr: { write: (t: string) => (stderr += t) },
  });
  return { code, stdout, stderr };
}

/** Spawns the real CLI process, optionally feeding stdin. */
function run(args: string[], opts: { stdin?: string; bin?: string[] } = {}): Promise<Run> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [...(opts.bin ?? SOURCE_BIN), ...args], { cwd: pkg });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (d) => (stdout += d));
    child.stderr.setEncoding('utf8').on('data', (d) => (stderr += d));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, stdout, stderr }));
    child.stdin.end(opts.stdin ?? '');
  });
}

const SHOP = fixture('shop-policies.yaml');
const GLOBAL = fixture('global-deny.yaml');
/** Destination namespace and port. */
const to = (namespace: string, port: string) => [
  '--dest-namespace',
  namespace,
  '--dest-port',
  port,
];
/** A TLS peer at 10.1.0.9. */
const peer = (identity: string) => ['--source-identity', identity, '--source-ip', '10.1.0.9'];
const toApi = [
  '--dest-namespace',
  'shop',
  '--dest-labels',
  'app=api,version=v1',
  '--dest-ip',
  '10.1.0.5',
  '--dest-port',
  '8080',
];

// Each case is its own process, so they run side by side.
describe.concurrent('mesh-policy-check (spawned from source)', { timeout: 90_000 }, () => {
  it('allows the frontend on 8080 through the selector policy and exits 0', async () => {
    const r = await run([
      SHOP,
      GLOBAL,
      ...peer('spiffe://cluster.local/ns/shop/sa/frontend'),
      ...toApi,
    ]);
    expect(r.code).toBe(0);
    expect(r.stdout).toContain('ALLOW: allowed by: shop/api-allow-frontend');
    expect(r.stdout).toContain('attached to workload: shop/api-allow-frontend');
    expect(r.stderr).toContain('warning WARN_RBAC_L7_RULE_DROPPED');
    expect(r.stderr).toContain('warning WARN_RBAC_DRY_RUN_NOT_SENT');
  });

  it('denies a service account named in a DENY policy and exits 1', async () => {
    const r = await run([SHOP, ...peer('cluster.local/ns/shop/sa/legacy-batch'), ...toApi]);
    expect(r.code).toBe(1);
    expect(r.stdout).toContain('DENY: explicitly denied by: shop/deny-legacy');
  });

  it('denies a peer no ALLOW admits with ztunnel wording', async () => {
    const r = await run([
      SHOP,
      '--quiet',
      ...peer('cluster.local/ns/monitoring/sa/prom'),
      ...toApi,
    ]);
    expect(r.code).toBe(1);
    expect(r.stdout).toContain('DENY: allow policies exist, but none allowed');
    expect(r.stderr).toBe('');
  });

  it('applies a GLOBAL prefix DENY from the root namespace to every namespace', async () => {
    const r = await run([
      GLOBAL,
      '--source-identity',
      'cluster.local/ns/quarantine-7/sa/x',
      ...to('payments', '443'),
    ]);
    expect(r.code).toBe(1);
    expect(r.stdout).toContain('explicitly denied by: istio-system/deny-quarantine');
  });

  it('--strict denies plaintext with the static STRICT policy and passes mTLS', async () => {
    const [plain, mtls] = await Promise.all([
      run([GLOBAL, '--strict', ...to('payments', '443')]),
      run([
        GLOBAL,
        '--strict',
        '--source-identity',
        'cluster.local/ns/a/sa/b',
        ...to('payments', '443'),
      ]),
    ]);
    expect(plain.code).toBe(1);
    expect(plain.stdout).toContain(
      'explicitly denied by: istio-system/istio_converted_static_strict',
    );
    expect(mtls.code).toBe(0);
  });

  it('resolves PeerAuthentication documents: mesh STRICT, a port-level exception, a PERMISSIVE namespace', async () => {
    const PA = fixture('peer-authentication.yaml');
    const labelled = (app: string, port: string) => [
      PA,
      '--dest-labels',
      `app=${app}`,
      ...to('shop', port),
    ];
    const [api, open, closed, lab, mtls] = await Promise.all([
      run(labelled('api', '8080')),
      run(labelled('legacy', '9000')),
      run(labelled('legacy', '8080')),
      run([PA, ...to('lab', '80')]),
      run([PA, ...peer('cluster.local/ns/a/sa/b'), ...to('shop', '8080')]),
    ]);
    expect(api.code).toBe(1);
    expect(api.stdout).toContain(
      'explicitly denied by: istio-system/istio_converted_static_strict',
    );
    expect(api.stdout).toContain('mTLS mode: STRICT');
    expect(open.code).toBe(0);
    expect(open.stdout).toContain('mTLS mode: STRICT (workload PeerAuthentication shop/legacy)');
    expect(closed.code).toBe(1);
    expect(closed.stdout).toContain(
      'explicitly denied by: shop/converted_peer_authentication_legacy',
    );
    expect(lab.code).toBe(0);
    expect(lab.stdout).toContain('mTLS mode: PERMISSIVE');
    expect(mtls.code).toBe(0);
  });

  it('prints the decision as JSON with dry-run results when dry-run forwarding is on', async () => {
    const r = await run([
      SHOP,
      '--json',
      '--enable-dry-run',
      ...peer('cluster.local/ns/other/sa/frontend'),
      '--dest-policy',
      'shop/api-allow-frontend',
      '--dest-namespace',
      'shop',
      '--dest-ip',
      '10.1.0.5',
      '--dest-port',
      '8080',
    ]);
    expect(r.code).toBe(1);
    const out = JSON.parse(r.stdout);
    expect(out).toMatchObject({
      allowed: false,
      reason: 'no-allow-matched',
      attached: ['shop/api-allow-frontend'],
      dryRun: { denyMatched: ['shop/audit-admin'], allowed: false, changed: false },
    });
  });

  it('warns about a listed policy key no file defines and skips it', async () => {
    const r = await run([GLOBAL, '--dest-policy', 'shop/missing', ...to('shop', '80')]);
    expect(r.code).toBe(0);
    expect(r.stderr).toContain('warning WARN_RBAC_UNKNOWN_POLICY: the workload lists shop/missing');
    expect(r.stdout).toContain('unknown policy keys skipped: shop/missing');
  });

  it('reads manifests from stdin with "-"', async () => {
    const manifest =
      'apiVersion: security.istio.io/v1\nkind: AuthorizationPolicy\nmetadata: {name: d, namespace: a}\nspec:\n  action: DENY\n  rules:\n  - to:\n    - operation: {ports: ["22"]}\n';
    const r = await run(['-', ...to('a', '22')], { stdin: manifest });
    expect(r.code).toBe(1);
    expect(r.stdout).toContain('explicitly denied by: a/d');
  });

  it('decides with a ztunnel local config and IPv6 source ranges', async () => {
    const base = [fixture('local-config.yaml'), ...to('shop', '8080'), '--source-ip', 'fd00:66::5'];
    const [intruder, friend] = await Promise.all([
      run([...base, '--source-identity', 'td/ns/shop/sa/intruder']),
      run([...base, '--source-identity', 'td/ns/shop/sa/friend']),
    ]);
    expect(intruder.code).toBe(1);
    expect(intruder.stdout).toContain('explicitly denied by: shop/block-range');
    expect(friend.code).toBe(0);
  });

  const usage: Array<[string, string[], RegExp]> = [
    ['no files', [...to('a', '1')], /no policy files given/],
    [
      'a missing destination namespace',
      [GLOBAL, '--dest-port', '1'],
      /--dest-namespace is required/,
    ],
    ['a bad port', [GLOBAL, ...to('a', 'http')], /--dest-port must be/],
    ['an unknown option', [GLOBAL, '--frobnicate'], /Unknown option '--frobnicate'/],
    [
      'a missing file',
      ['/nonexistent/p.yaml', ...to('a', '1')],
      /cannot read \/nonexistent\/p.yaml/,
    ],
    [
      'an IP-matching policy without --source-ip',
      [fixture('local-config.yaml'), ...to('shop', '1')],
      /shop\/block-range matches on source-ip; give --source-ip/,
    ],
    [
      'a bad identity',
      [GLOBAL, '--source-identity', 'spiffe://', ...to('a', '1')],
      /ERR_RBAC_INVALID_REQUEST/,
    ],
    ['bad labels', [GLOBAL, '--dest-labels', 'app', ...to('a', '1')], /is not key=value/],
  ];
  it('the real process exits 2 on a usage error, printing only to stderr', async () => {
    const r = await run([GLOBAL, '--frobnicate']);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/Unknown option '--frobnicate'/);
    expect(r.stdout).toBe('');
  });

  // The same code path in-process: spawning a process per row adds nothing but time.
  it.each(usage)('exits 2 on %s', async (_name, args, pattern) => {
    const r = await runInProcess(args);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(pattern);
    expect(r.stdout).toBe('');
  });

  describe('with bad manifests on disk', () => {
    let dir: string;
    beforeAll(async () => {
      dir = await mkdtemp(join(tmpdir(), 'l4-rbac-cli-'));
    });
    afterAll(async () => {
      await rm(dir, { recursive: true, force: true });
    });
    const bad: Array<[string, string, RegExp]> = [
      [
        'an AUDIT policy',
        'apiVersion: security.istio.io/v1\nkind: AuthorizationPolicy\nmetadata: {name: x, namespace: a}\nspec: {action: AUDIT}\n',
        /ERR_RBAC_UNSUPPORTED_ACTION: .*ztunnel does not support the AUDIT action/,
      ],
      ['broken YAML', 'kind: [\n', /ERR_RBAC_INVALID_MANIFEST/],
      [
        'an unknown field',
        'apiVersion: security.istio.io/v1\nkind: AuthorizationPolicy\nmetadata: {name: x, namespace: a}\nspec: {rule: []}\n',
        /ERR_RBAC_INVALID_MANIFEST: .*spec.rule: unknown field/,
      ],
      [
        'a local config without dryRun',
        'policies:\n- {name: x, namespace: a, scope: Global, action: Deny, rules: []}\n',
        /ERR_RBAC_INVALID_LOCAL_CONFIG: .*dryRun/,
      ],
    ];
    it.each(bad)('exits 2 with the error code on %s', async (name, text, pattern) => {
      const file = join(dir, `${name.replace(/\W+/g, '-')}.yaml`);
      await writeFile(file, text);
      // One row through the real process, the rest in-process.
      const exec = name === 'an AUDIT policy' ? run : runInProcess;
      const r = await exec([file, ...to('a', '1')]);
      expect(r.code).toBe(2);
      expect(r.stderr).toMatch(pattern);
    });
  });

  it('--help prints usage and exits 0', async () => {
    const r = await run(['--help']);
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/^Usage: mesh-policy-check/);
  });
});

describe('mesh-policy-check (built dist, plain node)', { timeout: 90_000 }, () => {
  beforeAll(async () => {
    const tsc = createRequire(import.meta.url).resolve('typescript/bin/tsc');
    await new Promise<void>((resolve, reject) =>
      execFile(
        process.execPath,
        [tsc, '-p', 'tsconfig.build.json'],
        { cwd: pkg },
        (err, _o, stderr) =>
          err ? reject(new Error(`build failed: ${stderr || err.message}`)) : resolve(),
      ),
    );
  }, 120_000);

  it('runs from dist/bin.js without tsx and gives the same verdict', async () => {
    const bin = [join(pkg, 'dist', 'bin.js')];
    const r = await run([SHOP, ...peer('cluster.local/ns/shop/sa/legacy-batch'), ...toApi], {
      bin,
    });
    expect(r.code).toBe(1);
    expect(r.stdout).toContain('DENY: explicitly denied by: shop/deny-legacy');
  });
});
