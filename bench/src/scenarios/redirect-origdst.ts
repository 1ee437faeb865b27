/**
 * What transparent capture costs per connection on the proxy side: accepting a connection
 * that nat REDIRECT sent to the listener and recovering its original destination
 * (SO_ORIGINAL_DST), against a plain accept of a direct connection to the same listener, and
 * against a redirected accept without the lookup. All three run in one pod namespace built
 * by the @mesh/redirect test kit, in the same run, alternating rounds.
 */
import {
  applyRedirect,
  connectSocket,
  createTransparentServer,
  originalDestination,
} from '@mesh/redirect';
import { createLab, namespaceSupport, type Pod } from '@mesh/redirect/testing';
import type { Measurement, Scenario, ScenarioContext } from '../scenario.js';

const SERVICE = '10.201.0.80';
const LISTEN_PORT = 15001;
const CONCURRENCY = 16;

type Mode = 'plain accept' | 'redirected accept' | 'redirected accept + original destination';

/**
 * Opens `count` connections (CONCURRENCY at a time) from a worker thread inside the pod, each
 * read until the server ends it; resolves with connections per second. The client runs on
 * its own thread, so the proxy's accept path on the main thread is what differs between modes.
 */
function connectionsPerSecond(
  pod: Pod,
  host: string,
  port: number,
  count: number,
  signal: AbortSignal,
) {
  return pod.run(
    async (a: { host: string; port: number; count: number; concurrency: number }) => {
      const net = require('node:net') as typeof import('node:net');
      let next = 0;
      const one = () =>
        new Promise<void>((resolve, reject) => {
          const s = net.connect({ host: a.host, port: a.port });
          s.on('data', () => {});
          s.once('end', () => resolve());
          s.once('error', reject);
        });
      const worker = async () => {
        while (next < a.count) {
          next++;
          await one();
        }
      };
      const start = performance.now();
      await Promise.all(Array.from({ length: a.concurrency }, worker));
      return a.count / ((performance.now() - start) / 1000);
    },
    { host, port, count, concurrency: CONCURRENCY },
    { signal },
  );
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] as number;

const scenario: Scenario = {
  name: 'redirect/origdst',
  description:
    'Accept + SO_ORIGINAL_DST per connection vs a plain accept and a redirected accept (conn/s), and the lookup alone (ns)',
  kind: 'micro',
  requires: { root: true, commands: ['ip', 'nsenter', 'iptables-save', 'iptables-restore'] },
  async run(ctx: ScenarioContext) {
    const support = namespaceSupport();
    if (!support.ok) throw new Error(`cannot run: ${support.reason}`);
    const perRound = ctx.quick ? 300 : 2000;
    const rounds = ctx.quick ? 1 : 5;
    const lab = await createLab({ ipv6: false, prefix: 'mbench-', signal: ctx.signal });
    try {
      const pod = await lab.addPod();
      await lab.node.addAddress(`${SERVICE}/32`);
      await applyRedirect({ netns: pod.path, mode: 'dedicated', ipv6: false, signal: ctx.signal });
      let lookup = false;
      let lookups = 0;
      const server = await createTransparentServer(
        { netns: pod.path, host: '0.0.0.0', port: LISTEN_PORT, transparent: true },
        (c) => {
          if (lookup) {
            originalDestination(c);
            lookups++;
          }
          c.end('x');
        },
      );
      try {
        const modes: Array<[Mode, string, number, boolean]> = [
          // Loopback is exempt from the dedicated-mode rule: a direct connection, no NAT.
          ['plain accept', '127.0.0.1', LISTEN_PORT, false],
          ['redirected accept', SERVICE, 80, false],
          ['redirected accept + original destination', SERVICE, 80, true],
        ];
        const results = new Map<Mode, number[]>(modes.map(([m]) => [m, []]));
        // Warm up every path once, then alternate so drift hits all of them alike.
        for (const [, host, port, withLookup] of modes) {
          lookup = withLookup;
          await connectionsPerSecond(pod, host, port, 100, ctx.signal);
        }
        for (let r = 0; r < rounds; r++) {
          for (const [mode, host, port, withLookup] of modes) {
            lookup = withLookup;
            results
              .get(mode)
              ?.push(await connectionsPerSecond(pod, host, port, perRound, ctx.signal));
          }
          ctx.log(`round ${r + 1}/${rounds}`);
        }
        if (lookups === 0) throw new Error('the lookup path never ran');

        // The lookup alone, on one accepted redirected socket: getsockname + getsockopt.
        const sample = await new Promise<number>((resolve, reject) => {
          lookup = false;
          const probe = createTransparentServer(
            { netns: pod.path, host: '0.0.0.0', port: 15002 },
            (c) => {
              const n = ctx.quick ? 20_000 : 200_000;
              const start = process.hrtime.bigint();
              for (let i = 0; i < n; i++) originalDestination(c);
              resolve(Number(process.hrtime.bigint() - start) / n);
              c.destroy();
            },
          );
          probe
            .then(async (p) => {
              await applyRedirect({
                netns: pod.path,
                mode: 'dedicated',
                ipv6: false,
                outboundPort: 15002,
              });
              const s = connectSocket({ netns: pod.path, host: SERVICE, port: 80 });
              s.on('error', () => {});
              s.on('close', () => p.close());
            })
            .catch(reject);
        });

        const m = (mode: Mode, compareTo?: Mode[]): Measurement => {
          const xs = results.get(mode) as number[];
          return {
            name: mode,
            unit: 'conn/s',
            value: median(xs),
            better: 'higher',
            ...(compareTo ? { compareTo } : {}),
            extra: { min: Math.min(...xs), max: Math.max(...xs), rounds },
          };
        };
        return {
          measurements: [
            m('plain accept'),
            m('redirected accept', ['plain accept']),
            m('redirected accept + original destination', ['plain accept', 'redirected accept']),
            { name: 'originalDestination() call', unit: 'ns', value: sample, better: 'lower' },
          ],
          notes: [
            `${perRound} connections per round, ${CONCURRENCY} concurrent, ${rounds} rounds (median, modes alternating); the client runs in a worker thread inside the pod namespace, the accepting server on the main thread with its listener in the same namespace.`,
            'Each connection: connect, accept, server writes 1 byte and ends, client reads to EOF.',
            `Redirected: dedicated-mode nat OUTPUT REDIRECT of ${SERVICE}:80 to :${LISTEN_PORT}; plain: 127.0.0.1:${LISTEN_PORT} (loopback is not redirected).`,
          ],
        };
      } finally {
        await new Promise<void>((r) => server.close(() => r()));
      }
    } finally {
      await lab.destroy();
    }
  },
};

export default scenario;
