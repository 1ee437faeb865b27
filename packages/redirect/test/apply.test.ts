import { subscribe, unsubscribe } from 'node:diagnostics_channel';
import { closeSync, openSync } from 'node:fs';
import { afterAll, beforeAll, beforeEach, describe, expect, it, vi } from 'vitest';
import { applyRedirect, RedirectError, removeRedirect } from '../src/index.js';
import { createLab, type Lab, type Pod } from '../src/testing/index.js';
import { ns, reportSkip } from './helpers.js';

reportSkip('applying and removing rules in a namespace', ns.ok, ns.reason);

/** Everything of the namespace's packet path a rule set could touch, comments and counters stripped. */
async function snapshot(pod: Pod) {
  const save = async (cmd: string) =>
    (await pod.exec([cmd])).stdout
      .split('\n')
      .filter((l) => l && !l.startsWith('#'))
      .map((l) => l.replace(/\[\d+:\d+\]/, '[0:0]'))
      .join('\n');
  return {
    iptables: await save('iptables-save'),
    ip6tables: await save('ip6tables-save'),
    nftTables: (await pod.exec(['nft', 'list', 'tables'])).stdout
      .trim()
      .split('\n')
      .filter(Boolean)
      .sort(),
    rules4: (await pod.exec(['ip', '-4', 'rule', 'show'])).stdout,
    rules6: (await pod.exec(['ip', '-6', 'rule', 'show'])).stdout,
    table100v4: await table100(pod, '-4'),
    table100v6: await table100(pod, '-6'),
  };
}

async function table100(pod: Pod, family: '-4' | '-6'): Promise<string> {
  try {
    return (await pod.exec(['ip', family, 'route', 'show', 'table', '100'])).stdout;
  } catch (err) {
    // An empty IPv4 FIB table stops existing; that is "nothing there" too.
    if (/does not exist/.test((err as Error).message)) return '';
    throw err;
  }
}

describe.runIf(ns.ok)('applying and removing rules in a namespace', () => {
  let lab: Lab;
  let pod: Pod;
  let baseline: Awaited<ReturnType<typeof snapshot>>;

  beforeAll(async () => {
    lab = await createLab({ ipv6: true });
    pod = await lab.addPod();
    // Somebody else's rules, which must survive everything we do.
    await pod.exec([
      'iptables',
      '-t',
      'nat',
      '-A',
      'OUTPUT',
      '-p',
      'tcp',
      '--dport',
      '9999',
      '-j',
      'ACCEPT',
    ]);
    await pod.exec([
      'ip6tables',
      '-t',
      'mangle',
      '-A',
      'PREROUTING',
      '-p',
      'udp',
      '--dport',
      '9999',
      '-j',
      'ACCEPT',
    ]);
    await pod.exec([
      'nft',
      'add table inet other; add chain inet other c { type filter hook output priority 10; }',
    ]);
    baseline = await snapshot(pod);
  });

  afterAll(async () => {
    await lab?.destroy();
  });

  beforeEach(async () => {
    await removeRedirect({ netns: pod.path });
  });

  it('applying twice gives the same rules as applying once (iptables)', async () => {
    await applyRedirect({ netns: pod.path });
    const once = await snapshot(pod);
    await applyRedirect({ netns: pod.path });
    expect(await snapshot(pod)).toEqual(once);
    expect(once.iptables.match(/-j ISTIO_PRERT/g)).toHaveLength(3);
    expect(once.ip6tables).toContain('--to-ports 15001');
    expect(once.rules4.match(/fwmark 0x111\/0xfff lookup 100/g)).toHaveLength(1);
    expect(once.rules6.match(/fwmark 0x111\/0xfff lookup 100/g)).toHaveLength(1);
    expect(once.table100v4).toContain('local default dev lo');
    expect(once.table100v6).toContain('local default dev lo');
  });

  it('applying twice gives the same rules as applying once (nftables)', async () => {
    await applyRedirect({ netns: pod.path, backend: 'nftables' });
    const once = await snapshot(pod);
    await applyRedirect({ netns: pod.path, backend: 'nftables' });
    expect(await snapshot(pod)).toEqual(once);
    expect(once.nftTables).toEqual(
      expect.arrayContaining([
        'table inet istio-ambient-mangle',
        'table inet istio-ambient-nat',
        'table inet istio-ambient-raw',
      ]),
    );
    expect(once.iptables).not.toContain('ISTIO');
  });

  it('switching backend or mode takes the previous set out', async () => {
    await applyRedirect({ netns: pod.path, backend: 'nftables' });
    const viaIptables = await applyRedirect({ netns: pod.path, backend: 'iptables' });
    let s = await snapshot(pod);
    expect(s.nftTables.filter((t) => t.includes('istio'))).toEqual([]);
    expect(s.iptables).toContain(
      viaIptables.iptables?.ipv4.split('\n').find((l) => l.includes('15006')),
    );
    await applyRedirect({ netns: pod.path, mode: 'dedicated' });
    s = await snapshot(pod);
    expect(s.iptables).not.toContain('ISTIO_PRERT');
    expect(s.iptables).not.toContain('15006');
    expect(s.iptables).toContain('--to-ports 15001');
    // Dedicated mode needs no policy routing.
    expect(s.rules4).not.toContain('lookup 100');
    await applyRedirect({ netns: pod.path, dnsCapture: false });
    s = await snapshot(pod);
    expect(s.iptables).not.toContain(
      '*raw\n:PREROUTING ACCEPT [0:0]\n:OUTPUT ACCEPT [0:0]\n:ISTIO',
    );
    expect(s.iptables).not.toContain('15053');
  });

  for (const backend of ['iptables', 'nftables'] as const) {
    it(`removal leaves the namespace as it was, other owners' rules included (${backend})`, async () => {
      await applyRedirect({ netns: pod.path, backend });
      await removeRedirect({ netns: pod.path });
      await removeRedirect({ netns: pod.path });
      const after = await snapshot(pod);
      expect(after).toEqual(baseline);
      expect(after.iptables).toContain('--dport 9999 -j ACCEPT');
      expect(after.nftTables).toContain('table inet other');
    });
  }

  it('a failure half-way (IPv6 route on a namespace with IPv6 disabled) rolls everything back', async () => {
    const bare = await lab.addPod();
    await bare.sysctl({
      'net.ipv6.conf.all.disable_ipv6': '1',
      'net.ipv6.conf.lo.disable_ipv6': '1',
    });
    const before = await snapshot(bare);
    const err = await applyRedirect({ netns: bare.path }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(RedirectError);
    expect(err).toMatchObject({ code: 'ERR_REDIRECT_RULES_FAILED' });
    expect((err as Error).message).toMatch(/IPv6 is disabled/);
    expect((err as RedirectError).cause).toMatchObject({ exitCode: 2 });
    const after = await snapshot(bare);
    expect(after.iptables).not.toContain('ISTIO');
    expect(after.ip6tables).not.toContain('ISTIO');
    expect(after.rules4).toBe(before.rules4);
    expect(after.table100v4).toBe('');
    // With IPv6 off in the rules too, the same namespace takes the set.
    await applyRedirect({ netns: bare.path, ipv6: false });
    expect((await snapshot(bare)).iptables).toContain('ISTIO_OUTPUT');
  });

  it('accepts the namespace as an open fd, as ZDS hands it over', async () => {
    const fd = openSync(pod.path, 'r');
    try {
      await applyRedirect({ netns: fd, backend: 'nftables' });
      expect((await snapshot(pod)).nftTables).toContain('table inet istio-ambient-nat');
      await removeRedirect({ netns: fd });
      expect((await snapshot(pod)).nftTables).not.toContain('table inet istio-ambient-nat');
    } finally {
      closeSync(fd);
    }
  });

  it('an aborted apply rejects with the abort reason and leaves nothing', async () => {
    const reason = new Error('stop');
    const err = await applyRedirect({ netns: pod.path, signal: AbortSignal.abort(reason) }).catch(
      (e: unknown) => e,
    );
    expect(err).toBe(reason);
    expect((await snapshot(pod)).iptables).not.toContain('ISTIO');
  });

  it('reports a missing tool as ERR_REDIRECT_COMMAND_MISSING', async () => {
    vi.stubEnv('PATH', '/nonexistent');
    try {
      await expect(applyRedirect({ netns: pod.path })).rejects.toMatchObject({
        code: 'ERR_REDIRECT_COMMAND_MISSING',
      });
    } finally {
      vi.unstubAllEnvs();
    }
  });

  it('rejects a namespace that does not exist without touching anything', async () => {
    const err = await applyRedirect({ netns: '/var/run/netns/mlab-does-not-exist' }).catch(
      (e: unknown) => e,
    );
    expect(err).toMatchObject({ code: 'ERR_REDIRECT_RULES_FAILED' });
    expect((err as Error).message).toMatch(/nsenter/);
  });

  it('publishes mesh:redirect:rules-applied and rules-removed', async () => {
    const events: Array<[string, unknown]> = [];
    const onApplied = (m: unknown) => events.push(['applied', m]);
    const onRemoved = (m: unknown) => events.push(['removed', m]);
    subscribe('mesh:redirect:rules-applied', onApplied);
    subscribe('mesh:redirect:rules-removed', onRemoved);
    try {
      await applyRedirect({ netns: pod.path, backend: 'nftables' });
      await removeRedirect({ netns: pod.path });
    } finally {
      unsubscribe('mesh:redirect:rules-applied', onApplied);
      unsubscribe('mesh:redirect:rules-removed', onRemoved);
    }
    expect(events).toEqual([
      ['applied', { netns: pod.path, backend: 'nftables', mode: 'inpod', routing: true }],
      ['removed', { netns: pod.path }],
    ]);
  });
});
