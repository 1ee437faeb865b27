/**
 * Entry point of an {@link Agent} child process: runs traffic servers and clients on request
 * from the parent over the IPC channel. Exits when the parent disconnects or sends `exit`, so a
 * `--cpu-prof` profile is written.
 */

import {
  type IdleConnections,
  openIdle,
  type RunningServer,
  runBulk,
  runConnRate,
  runLatency,
  startEcho,
  startSink,
} from './traffic.js';

interface Request {
  id: number;
  op: string;
  args: Record<string, unknown>;
}

const servers = new Map<number, RunningServer>();
const idles = new Map<number, IdleConnections>();
const aborts = new Map<number, AbortController>();
let nextHandle = 1;

// biome-ignore lint/suspicious/noExplicitAny: arguments arrive as JSON from the parent.
const ops: Record<string, (args: any, signal: AbortSignal) => Promise<unknown>> = {
  async sink(args) {
    const server = await startSink(args);
    servers.set(nextHandle, server);
    return { handle: nextHandle++, host: server.host, port: server.port };
  },
  async echo(args) {
    const server = await startEcho(args);
    servers.set(nextHandle, server);
    return { handle: nextHandle++, host: server.host, port: server.port };
  },
  async closeServer(args) {
    await servers.get(args.handle)?.close();
    servers.delete(args.handle);
    return {};
  },
  bulk: (args, signal) => runBulk(args, signal),
  latency: (args, signal) => runLatency(args, signal),
  connRate: (args, signal) => runConnRate(args, signal),
  async idle(args, signal) {
    const idle = await openIdle(args, signal);
    idles.set(nextHandle, idle);
    return { handle: nextHandle++, count: idle.count };
  },
  async closeIdle(args) {
    idles.get(args.handle)?.close();
    idles.delete(args.handle);
    return {};
  },
  async abort(args) {
    aborts.get(args.target)?.abort(new Error('aborted by parent'));
    return {};
  },
};

async function shutdown(): Promise<void> {
  for (const c of aborts.values()) c.abort(new Error('agent exiting'));
  for (const i of idles.values()) i.close();
  await Promise.all([...servers.values()].map((s) => s.close()));
  process.exit(0);
}

process.on('message', (msg: Request) => {
  if (msg.op === 'exit') {
    void shutdown();
    return;
  }
  const op = ops[msg.op];
  const controller = new AbortController();
  aborts.set(msg.id, controller);
  Promise.resolve()
    .then(() => {
      if (!op) throw new Error(`unknown agent op ${msg.op}`);
      return op(msg.args, controller.signal);
    })
    .then(
      (result) => process.send?.({ id: msg.id, ok: true, result }),
      (err: Error) => process.send?.({ id: msg.id, ok: false, error: err?.message ?? String(err) }),
    )
    .finally(() => aborts.delete(msg.id));
});
process.on('disconnect', () => void shutdown());
process.on('SIGTERM', () => void shutdown());
process.send?.({ id: 0, ok: true, result: 'ready' });
