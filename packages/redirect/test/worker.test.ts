import { createRequire } from 'node:module';
import { Worker } from 'node:worker_threads';
import { describe, expect, it } from 'vitest';
import { netnsId } from '../src/index.js';
import { packageRoot } from '../src/native.js';
import { createLab } from '../src/testing/index.js';
import { linux, ns, reportSkip } from './helpers.js';

reportSkip('the addon in worker threads', linux, 'needs Linux and the built addon');

function inWorker<T>(source: string, workerData: unknown): Promise<T> {
  const worker = new Worker(source, { eval: true, workerData });
  return new Promise((resolve, reject) => {
    worker.once('message', (m: T) => {
      void worker.terminate();
      resolve(m);
    });
    worker.once('error', reject);
  });
}

describe.runIf(linux)('the addon in worker threads', () => {
  it('loads in two workers at once (context-aware) and creates a listening socket from each', async () => {
    const source = `
      const { workerData, parentPort } = require('node:worker_threads');
      const net = require('node:net');
      const b = require(workerData.loader)(workerData.root);
      const fd = b.createListenSocket({ family: 4, address: '127.0.0.1', port: 0, backlog: 8, reuseAddr: true });
      const server = net.createServer((c) => c.end('from worker')).listen({ fd }, () => {
        parentPort.postMessage({ supported: b.supported, port: server.address().port, netns: b.netnsId() });
      });
    `;
    const data = {
      loader: createRequire(import.meta.url).resolve('node-gyp-build'),
      root: packageRoot,
    };
    const results = await Promise.all([
      inWorker<{ supported: boolean; port: number; netns: number }>(source, data),
      inWorker<{ supported: boolean; port: number; netns: number }>(source, data),
    ]);
    for (const r of results) {
      expect(r.supported).toBe(true);
      expect(r.port).toBeGreaterThan(0);
      expect(r.netns).toBe(netnsId());
    }
    expect(results[0]?.port).not.toBe(results[1]?.port);
  });

  it.runIf(ns.ok)(
    'a worker of the test kit runs inside the pod namespace while the main thread stays home',
    async () => {
      const lab = await createLab({ ipv6: false });
      try {
        const pod = await lab.addPod();
        const home = netnsId();
        const seen = await pod.run(async (podIp: string) => {
          const { networkInterfaces } = await import('node:os');
          const addrs = Object.values(networkInterfaces())
            .flat()
            .map((a) => a?.address);
          return {
            hasPodIp: addrs.includes(podIp),
            names: Object.keys(networkInterfaces()).sort(),
          };
        }, pod.ip4);
        expect(seen).toEqual({ hasPodIp: true, names: ['eth0', 'lo'] });
        expect(netnsId()).toBe(home);
        expect(netnsId(pod.path)).not.toBe(home);
      } finally {
        await lab.destroy();
      }
    },
  );
});
