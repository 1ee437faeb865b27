/**
 * Test kit: a simulated node and pods built from network namespaces, for end-to-end tests of
 * capture and proxying. Needs root (CAP_NET_ADMIN + CAP_SYS_ADMIN), `ip` and `nsenter`.
 * Everything it creates is named `<prefix><pid>-<n>-...` so a crashed run's leftovers are
 * recognised and removed by the next run ({@link cleanupStaleNamespaces}).
 */
import { type ChildProcess, execFileSync, type SpawnOptions, spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { Worker } from 'node:worker_threads';
import { type CommandResult, run as runCommand } from '../exec.js';
import { isSupported, loadError, packageRoot } from '../native.js';
import { probeCapabilities } from '../sockets.js';

export const DEFAULT_PREFIX = 'mlab-';

/** Whether namespaced tests can run here, and if not, why (print it when skipping). */
export function namespaceSupport(): { ok: boolean; reason: string } {
  if (process.platform !== 'linux')
    return { ok: false, reason: `network namespaces need Linux, this is ${process.platform}` };
  if (!isSupported)
    return { ok: false, reason: `the native addon is unavailable: ${loadError?.message}` };
  if (process.getuid?.() !== 0)
    return { ok: false, reason: 'namespaced tests need root (CAP_NET_ADMIN + CAP_SYS_ADMIN)' };
  const caps = probeCapabilities();
  if (!caps.setns || !caps.mark || !caps.transparent)
    return { ok: false, reason: `missing capabilities: ${caps.missing.join('; ')}` };
  for (const cmd of ['ip', 'nsenter']) {
    try {
      execFileSync(cmd, ['-V'], { stdio: 'ignore' });
    } catch {
      return { ok: false, reason: `${cmd} is not installed` };
    }
  }
  return { ok: true, reason: '' };
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

function listNamespaces(): string[] {
  const out = execFileSync('ip', ['netns', 'list'], { encoding: 'utf8' });
  return out
    .split('\n')
    .map((l) => l.split(' ')[0] as string)
    .filter(Boolean);
}

/** Deletes namespaces named `<prefix><pid>-...` whose process is gone. Returns their names. */
export function cleanupStaleNamespaces(prefix = DEFAULT_PREFIX): string[] {
  const removed: string[] = [];
  for (const name of listNamespaces()) {
    if (!name.startsWith(prefix)) continue;
    const pid = Number(name.slice(prefix.length).split('-')[0]);
    if (!Number.isInteger(pid) || alive(pid)) continue;
    try {
      execFileSync('ip', ['netns', 'del', name], { stdio: 'ignore' });
      removed.push(name);
    } catch {
      // already gone
    }
  }
  return removed;
}

export interface RunOptions {
  signal?: AbortSignal;
}

/** One network namespace of the lab. */
export class Netns {
  readonly children = new Set<ChildProcess>();

  constructor(
    /** The name under /var/run/netns. */
    readonly name: string,
  ) {}

  /** The namespace file, for `netns` options of the socket calls and `nsenter --net=`. */
  get path(): string {
    return `/var/run/netns/${this.name}`;
  }

  /** Runs a command inside the namespace and resolves with its output; rejects on a non-zero exit. */
  exec(
    argv: string[],
    options: { input?: string; signal?: AbortSignal } = {},
  ): Promise<CommandResult> {
    return runCommand(argv, { netns: this.path, ...options });
  }

  /** Spawns a long-running process inside the namespace; the lab kills it on destroy. */
  spawn(command: string, args: string[] = [], options: SpawnOptions = {}): ChildProcess {
    const child = spawn('nsenter', [`--net=${this.path}`, '--', command, ...args], {
      stdio: 'pipe',
      ...options,
    });
    this.children.add(child);
    child.once('exit', () => this.children.delete(child));
    return child;
  }

  /**
   * Runs `fn(arg)` in a worker thread that has entered this namespace: every socket it
   * creates lives here. `fn` is sent as source text, so it must be self-contained (use
   * `require('node:net')` or `await import('node:net')` inside it, no closures); `arg` and
   * the result are structured-cloned.
   * The worker is terminated when `fn` settles, closing whatever it left open.
   */
  run<A, R>(
    fn: (arg: A) => R | Promise<R>,
    arg?: A,
    options: RunOptions = {},
  ): Promise<Awaited<R>> {
    return runInNetns(this.path, fn, arg, options);
  }

  /** Adds an address (CIDR) to a device here, `lo` by default. */
  async addAddress(cidr: string, dev = 'lo'): Promise<void> {
    const six = cidr.includes(':');
    await this.exec([
      'ip',
      ...(six ? ['-6'] : []),
      'addr',
      'add',
      cidr,
      'dev',
      dev,
      ...(six ? ['nodad'] : []),
    ]);
  }

  /**
   * Sets `net.*` sysctls of this namespace (written under /proc/sys by a shell that entered
   * it, so procps need not be installed).
   */
  async sysctl(values: Record<string, string>): Promise<void> {
    for (const [key, value] of Object.entries(values)) {
      if (!/^net(\.[\w-]+)+$/.test(key) || !/^[\w.:-]*$/.test(value))
        throw new Error(`bad sysctl ${key}=${value}`);
      await this.exec(['sh', '-c', `echo '${value}' > /proc/sys/${key.replaceAll('.', '/')}`]);
    }
  }

  killChildren(): void {
    for (const child of this.children) child.kill('SIGKILL');
    this.children.clear();
  }
}

const workerSource = `
const { workerData, parentPort } = require('node:worker_threads');
const binding = require(workerData.loader)(workerData.root);
binding.enterNetns({ netns: workerData.netns });
// fn arrives as source text: give it require, the dynamic-import helper vitest rewrites
// \`import()\` into when the function comes from a transformed test file.
globalThis.require = require;
globalThis.__vite_ssr_dynamic_import__ = (id) => import(id);
// ... and esbuild's (tsx) name-keeping helper.
globalThis.__name = (target) => target;
const fn = (0, eval)('(' + workerData.src + ')');
Promise.resolve()
  .then(() => fn(workerData.arg))
  .then((value) => parentPort.postMessage({ ok: true, value }), (error) => parentPort.postMessage({ ok: false, error }));
`;

/** {@link Netns.run} for any namespace path. */
export function runInNetns<A, R>(
  netnsPath: string,
  fn: (arg: A) => R | Promise<R>,
  arg?: A,
  options: RunOptions = {},
): Promise<Awaited<R>> {
  const { signal } = options;
  if (signal?.aborted) return Promise.reject(signal.reason);
  const loader = createRequire(import.meta.url).resolve('node-gyp-build');
  const worker = new Worker(workerSource, {
    eval: true,
    workerData: { loader, root: packageRoot, netns: netnsPath, src: fn.toString(), arg },
  });
  return new Promise((resolve, reject) => {
    let settled = false;
    const finish = (f: () => void) => {
      if (settled) return;
      settled = true;
      signal?.removeEventListener('abort', onAbort);
      void worker.terminate();
      f();
    };
    const onAbort = () => finish(() => reject(signal?.reason));
    signal?.addEventListener('abort', onAbort, { once: true });
    worker.once('message', (m: { ok: boolean; value?: Awaited<R>; error?: unknown }) =>
      finish(() => (m.ok ? resolve(m.value as Awaited<R>) : reject(m.error))),
    );
    worker.once('error', (err) => finish(() => reject(err)));
    worker.once('exit', (code) =>
      finish(() => reject(new Error(`netns worker exited with ${code} before answering`))),
    );
  });
}

export interface PodOptions {
  /** Short label used in the namespace name. Default `pod<n>`. */
  name?: string;
  signal?: AbortSignal;
}

/** A pod: its own namespace with `eth0` wired to the node. */
export class Pod extends Netns {
  constructor(
    name: string,
    readonly index: number,
    /** Pod IPv4 address (no prefix length). */
    readonly ip4: string,
    /** The node's address on the pod's link, the pod's default gateway. */
    readonly gateway4: string,
    /** The node-side interface name (in the node namespace). */
    readonly hostIface: string,
    readonly ip6?: string,
    readonly gateway6?: string,
  ) {
    super(name);
  }
}

export interface LabOptions {
  /** Name prefix for every namespace; stale ones with this prefix are removed first. Default `mlab-`. */
  prefix?: string;
  /** Give every link IPv6 addresses too (fd00:200::/48 space). Default true. */
  ipv6?: boolean;
  /** Attach pods to a bridge `br0` in the node (one subnet) instead of one routed /24 per pod. Default false. */
  bridge?: boolean;
  signal?: AbortSignal;
}

/** Loopback up; no duplicate address detection, so IPv6 addresses (link-local too) work at once. */
async function prepare(ns: Netns): Promise<void> {
  await ns.exec(['ip', 'link', 'set', 'lo', 'up']);
  await ns.sysctl({ 'net.ipv6.conf.all.accept_dad': '0', 'net.ipv6.conf.default.accept_dad': '0' });
}

/** veth carrier comes up asynchronously (linkwatch); packets sent before that are dropped. */
async function waitForCarrier(ns: Netns, dev: string): Promise<void> {
  for (let i = 0; i < 100; i++) {
    const { stdout } = await ns.exec(['ip', '-j', 'link', 'show', 'dev', dev]);
    const [link] = JSON.parse(stdout) as Array<{ operstate?: string }>;
    if (link?.operstate === 'UP') return;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`${dev} in ${ns.name} did not come up`);
}

let labCounter = 0;
const liveLabs = new Set<Lab>();
let exitHookInstalled = false;

function installExitHook(): void {
  if (exitHookInstalled) return;
  exitHookInstalled = true;
  // Last resort for a test process that exits without running its afterAll hooks.
  process.once('exit', () => {
    for (const lab of liveLabs) lab.destroySync();
  });
}

/**
 * A simulated Kubernetes node: one `node` namespace (forwarding on) and pods wired to it.
 * Addresses are private to the namespaces: routed pods get 10.200.<n>.2/24 behind gateway
 * 10.200.<n>.1 (fd00:200:<n>::2/64); bridged pods share 10.200.0.0/24 on `br0`
 * (10.200.0.1 is the node).
 */
export class Lab {
  readonly pods: Pod[] = [];
  private destroyed = false;

  private constructor(
    readonly node: Netns,
    readonly prefix: string,
    readonly ipv6: boolean,
    readonly bridge: boolean,
  ) {}

  static async create(options: LabOptions = {}): Promise<Lab> {
    const prefix = options.prefix ?? DEFAULT_PREFIX;
    if (!/^[a-z][a-z0-9-]{0,15}$/.test(prefix))
      throw new Error('prefix must be a short lowercase name');
    cleanupStaleNamespaces(prefix);
    const base = `${prefix}${process.pid}-${++labCounter}`;
    const node = new Netns(`${base}-node`);
    const lab = new Lab(node, base, options.ipv6 ?? true, options.bridge ?? false);
    liveLabs.add(lab);
    installExitHook();
    try {
      await runCommand(['ip', 'netns', 'add', node.name], { signal: options.signal });
      await prepare(node);
      await node.sysctl({
        'net.ipv4.ip_forward': '1',
        ...(lab.ipv6 ? { 'net.ipv6.conf.all.forwarding': '1' } : {}),
      });
      if (lab.bridge) {
        await node.exec(['ip', 'link', 'add', 'br0', 'type', 'bridge']);
        await node.exec(['ip', 'addr', 'add', '10.200.0.1/24', 'dev', 'br0']);
        if (lab.ipv6)
          await node.exec(['ip', '-6', 'addr', 'add', 'fd00:200::1/64', 'dev', 'br0', 'nodad']);
        await node.exec(['ip', 'link', 'set', 'br0', 'up']);
      }
    } catch (err) {
      await lab.destroy();
      throw err;
    }
    return lab;
  }

  /** Creates a pod namespace with `eth0` linked to the node, addresses and a default route. */
  async addPod(options: PodOptions = {}): Promise<Pod> {
    if (this.destroyed) throw new Error('lab destroyed');
    const n = this.pods.length + 1;
    if (n > 250) throw new Error('at most 250 pods per lab');
    const label = options.name ?? `pod${n}`;
    if (!/^[a-z0-9]{1,12}$/.test(label))
      throw new Error('pod name must be 1-12 lowercase letters or digits');
    const hostIface = `veth${n}`;
    const [ip4, gw4, len4] = this.bridge
      ? [`10.200.0.${n + 1}`, '10.200.0.1', 24]
      : [`10.200.${n}.2`, `10.200.${n}.1`, 24];
    const [ip6, gw6] = this.bridge
      ? [`fd00:200::${n + 1}`, 'fd00:200::1']
      : [`fd00:200:${n}::2`, `fd00:200:${n}::1`];
    const pod = new Pod(
      `${this.prefix}-${label}`,
      n,
      ip4,
      gw4,
      hostIface,
      this.ipv6 ? ip6 : undefined,
      this.ipv6 ? gw6 : undefined,
    );
    this.pods.push(pod);
    const { signal } = options;
    await runCommand(['ip', 'netns', 'add', pod.name], { signal });
    await prepare(pod);
    const node = this.node;
    const v6 = this.ipv6;
    const steps: Array<[Netns, string[], boolean?]> = [
      [
        node,
        ['ip', 'link', 'add', hostIface, 'type', 'veth', 'peer', 'name', 'eth0', 'netns', pod.name],
      ],
      [node, ['ip', 'link', 'set', hostIface, 'master', 'br0'], this.bridge],
      [node, ['ip', 'addr', 'add', `${gw4}/${len4}`, 'dev', hostIface], !this.bridge],
      [
        node,
        ['ip', '-6', 'addr', 'add', `${gw6}/64`, 'dev', hostIface, 'nodad'],
        !this.bridge && v6,
      ],
      [node, ['ip', 'link', 'set', hostIface, 'up']],
      [pod, ['ip', 'addr', 'add', `${ip4}/${len4}`, 'dev', 'eth0']],
      [pod, ['ip', '-6', 'addr', 'add', `${ip6}/64`, 'dev', 'eth0', 'nodad'], v6],
      [pod, ['ip', 'link', 'set', 'eth0', 'up']],
      [pod, ['ip', 'route', 'add', 'default', 'via', gw4]],
      [pod, ['ip', '-6', 'route', 'add', 'default', 'via', gw6], v6],
    ];
    for (const [ns, argv, when = true] of steps) {
      if (when) await ns.exec(argv, { signal });
    }
    await waitForCarrier(pod, 'eth0');
    return pod;
  }

  /** Kills spawned processes and deletes every namespace (veths and rules go with them). Idempotent. */
  async destroy(): Promise<void> {
    this.destroySync();
  }

  destroySync(): void {
    if (this.destroyed) return;
    this.destroyed = true;
    liveLabs.delete(this);
    for (const ns of [...this.pods, this.node]) {
      ns.killChildren();
      if (existsSync(ns.path)) {
        try {
          execFileSync('ip', ['netns', 'del', ns.name], { stdio: 'ignore' });
        } catch {
          // deleted concurrently
        }
      }
    }
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.destroy();
  }
}

/** Creates a {@link Lab}. Call `destroy()` in `afterAll`/`finally`. */
export function createLab(options: LabOptions = {}): Promise<Lab> {
  return Lab.create(options);
}
