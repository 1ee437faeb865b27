import { execFile } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { applyRedirect } from '../src/index.js';
import { createLab, type Lab, type Pod } from '../src/testing/index.js';
import { ns, reportSkip } from './helpers.js';

reportSkip('without privilege', ns.ok, `${ns.reason} (the test drops privileges from root)`);

const child = fileURLToPath(new URL('./fixtures/unprivileged-child.ts', import.meta.url));
const repoRoot = fileURLToPath(new URL('../../..', import.meta.url));

const ways = {
  'root without CAP_NET_ADMIN, CAP_NET_RAW, CAP_SYS_ADMIN': [
    'setpriv',
    '--bounding-set',
    '-net_admin,-net_raw,-sys_admin',
    '--',
  ],
  nobody: ['setpriv', '--reuid=65534', '--regid=65534', '--clear-groups', '--'],
};

async function runUnprivileged(prefix: string[], podPath: string) {
  const [cmd, ...args] = [
    ...prefix,
    process.execPath,
    '--conditions=@mesh/source',
    '--import',
    'tsx',
    child,
    podPath,
  ];
  const { stdout } = await promisify(execFile)(cmd as string, args, {
    cwd: repoRoot,
    timeout: 60_000,
  });
  return JSON.parse(stdout);
}

async function ourState(pod: Pod): Promise<string> {
  const parts = await Promise.all([
    pod.exec(['iptables-save']),
    pod.exec(['ip6tables-save']),
    pod.exec(['nft', 'list', 'tables']),
    pod.exec(['ip', 'rule', 'show']),
    pod.exec(['ip', '-6', 'rule', 'show']),
  ]);
  return parts
    .map((p) => p.stdout)
    .join('\n')
    .split('\n')
    .filter((l) => /ISTIO|istio|lookup 100/.test(l))
    .join('\n');
}

// biome-ignore lint/suspicious/noExplicitAny: the child's JSON report
function checkChild(r: any): void {
  expect(r.capabilities).toMatchObject({
    supported: true,
    transparent: false,
    transparent6: false,
    mark: false,
    setns: false,
    freebind: true,
    reusePort: true,
  });
  expect(r.capabilities.missing.join('\n')).toMatch(/CAP_NET_ADMIN.*EPERM/);
  const eperm = (syscall: string, option: string, hint: RegExp) => ({
    code: 'EPERM',
    errno: -1,
    syscall,
    option,
    message: expect.stringMatching(hint),
  });
  expect(r.transparentListener).toMatchObject(
    eperm('setsockopt', 'IP_TRANSPARENT', /IP_TRANSPARENT.*EPERM.*CAP_NET_ADMIN/),
  );
  expect(r.transparentListener6).toMatchObject(
    eperm('setsockopt', 'IPV6_TRANSPARENT', /CAP_NET_ADMIN/),
  );
  expect(r.markedListener).toMatchObject(eperm('setsockopt', 'SO_MARK', /SO_MARK.*CAP_NET_ADMIN/));
  expect(r.spoofedOutbound).toMatchObject(eperm('setsockopt', 'IP_TRANSPARENT', /CAP_NET_ADMIN/));
  expect(r.markedOutbound).toMatchObject(eperm('setsockopt', 'SO_MARK', /CAP_NET_ADMIN/));
  expect(r.setMark).toMatchObject(eperm('setsockopt', 'SO_MARK', /CAP_NET_ADMIN/));
  expect(r.netnsListener).toMatchObject(eperm('setns', 'CLONE_NEWNET', /CAP_SYS_ADMIN/));
  for (const key of ['apply', 'applyNft', 'remove']) {
    expect(r[key], key).toMatchObject({
      code: 'ERR_REDIRECT_RULES_FAILED',
      causeCode: 'EPERM',
    });
    expect(r[key].message, key).toMatch(/Operation not permitted|Permission denied/);
  }
  expect(r.fdsLeaked).toBe(0);
}

describe.runIf(ns.ok)('without privilege', () => {
  let lab: Lab;
  beforeAll(async () => {
    lab = await createLab({ ipv6: true });
  });
  afterAll(async () => {
    await lab?.destroy();
  });

  for (const [how, prefix] of Object.entries(ways)) {
    it(`every privileged call fails with EPERM and says what is missing (${how})`, {
      timeout: 90_000,
    }, async () => {
      const pod = await lab.addPod();
      const r = await runUnprivileged(prefix, pod.path);
      try {
        checkChild(r);
      } catch (err) {
        (err as Error).message +=
          `\nthe unprivileged child reported: ${JSON.stringify(r, null, 1)}`;
        throw err;
      }
      // Nothing of ours appeared in the pod.
      expect(await ourState(pod)).toBe('');
    });
  }

  it('an unprivileged removal leaves rules applied by root intact, not half-removed', {
    timeout: 90_000,
  }, async () => {
    const pod = await lab.addPod();
    await applyRedirect({ netns: pod.path });
    const applied = await ourState(pod);
    expect(applied).toContain('ISTIO_OUTPUT');
    const r = await runUnprivileged(ways.nobody, pod.path);
    expect(r.remove).toMatchObject({ code: 'ERR_REDIRECT_RULES_FAILED', causeCode: 'EPERM' });
    expect(await ourState(pod)).toBe(applied);
  });
});
