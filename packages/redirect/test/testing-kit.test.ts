import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { cleanupStaleNamespaces, createLab } from '../src/testing/index.js';
import { ns, reportSkip } from './helpers.js';

reportSkip('the namespace test kit', ns.ok, ns.reason);

const list = () => execFileSync('ip', ['netns', 'list'], { encoding: 'utf8' });

describe.runIf(ns.ok)('the namespace test kit', () => {
  it('wires routed pods to the node: pods reach each other through it, over IPv4 and IPv6', async () => {
    const lab = await createLab({ ipv6: true });
    try {
      const a = await lab.addPod();
      const b = await lab.addPod({ name: 'web' });
      expect(a.name).toMatch(new RegExp(`^mlab-${process.pid}-\\d+-pod1$`));
      expect(b.name).toMatch(/-web$/);
      expect([a.ip4, a.gateway4, b.ip4]).toEqual(['10.200.1.2', '10.200.1.1', '10.200.2.2']);
      const refused = await a.run(
        async (hosts: string[]) => {
          const net = require('node:net') as typeof import('node:net');
          const probe = (host: string) =>
            new Promise<string>((resolve) => {
              const s = net.connect({ host, port: 7001 });
              s.on('error', (e: NodeJS.ErrnoException) => resolve(e.code ?? 'error'));
              s.on('connect', () => resolve('connected'));
            });
          return Promise.all(hosts.map(probe));
        },
        [b.ip4, b.ip6 as string],
      );
      // ECONNREFUSED proves each SYN crossed the node and b answered with a RST.
      expect(refused).toEqual(['ECONNREFUSED', 'ECONNREFUSED']);
    } finally {
      await lab.destroy();
    }
  });

  it('bridged pods share one subnet on br0', async () => {
    const lab = await createLab({ ipv6: false, bridge: true });
    try {
      const a = await lab.addPod();
      const b = await lab.addPod();
      expect([a.ip4, b.ip4, a.gateway4]).toEqual(['10.200.0.2', '10.200.0.3', '10.200.0.1']);
      const server = b.spawn(process.execPath, [
        '-e',
        `require('net').createServer(c=>c.end('hi from b')).listen(7000,'${b.ip4}',()=>console.log('up'))`,
      ]);
      await new Promise((r) => server.stdout?.once('data', r));
      const reply = await a.run(async (host: string) => {
        const net = require('node:net') as typeof import('node:net');
        return new Promise<string>((resolve, reject) => {
          let data = '';
          net
            .connect({ host, port: 7000 })
            .on('data', (d: Buffer) => {
              data += d;
            })
            .on('end', () => resolve(data))
            .on('error', reject);
        });
      }, b.ip4);
      expect(reply).toBe('hi from b');
      const { stdout } = await lab.node.exec(['ip', '-br', 'link', 'show', 'master', 'br0']);
      expect(stdout).toMatch(/veth1/);
      expect(stdout).toMatch(/veth2/);
    } finally {
      await lab.destroy();
    }
  });

  it('destroy kills spawned processes and deletes every namespace, and is idempotent', async () => {
    const lab = await createLab({ ipv6: false });
    const pod = await lab.addPod();
    const sleeper = pod.spawn('sleep', ['60']);
    const exited = new Promise((r) => sleeper.once('exit', r));
    await lab.destroy();
    await lab.destroy();
    await exited;
    expect(existsSync(pod.path)).toBe(false);
    expect(existsSync(lab.node.path)).toBe(false);
    expect(list()).not.toContain(lab.prefix);
  });

  it('a failing run() rejects with the error thrown inside the namespace', async () => {
    const lab = await createLab({ ipv6: false });
    try {
      const pod = await lab.addPod();
      await expect(
        pod.run(() => {
          throw new RangeError('inside');
        }),
      ).rejects.toMatchObject({ name: 'RangeError', message: 'inside' });
      const reason = new Error('gave up');
      await expect(
        pod.run(() => new Promise(() => {}), undefined, { signal: AbortSignal.abort(reason) }),
      ).rejects.toBe(reason);
    } finally {
      await lab.destroy();
    }
  });

  it('removes namespaces a crashed earlier run left behind, and only those', () => {
    // A pid that cannot be alive (above pid_max) stands in for the crashed run.
    const stale = 'mlabtest-4194999-1-node';
    const live = `mlabtest-${process.pid}-1-node`;
    execFileSync('ip', ['netns', 'add', stale]);
    execFileSync('ip', ['netns', 'add', live]);
    try {
      expect(cleanupStaleNamespaces('mlabtest-')).toEqual([stale]);
      expect(list()).not.toContain(stale);
      expect(list()).toContain(live);
    } finally {
      execFileSync('ip', ['netns', 'del', live]);
      if (list().includes(stale)) execFileSync('ip', ['netns', 'del', stale]);
    }
  });
});
