import { channel } from 'node:diagnostics_channel';
import { RedirectError } from './errors.js';
import { type CommandFailure, run } from './exec.js';
import {
  chainsOf,
  dedicatedNftRules,
  IPTABLES_CHAINS,
  IPTABLES_TABLES,
  type IptablesRestoreInput,
  inpodNftRules,
  iptablesRuleSet,
  type PolicyRouting,
  policyRouting,
  type RedirectMode,
  type RuleOptions,
  removeNftRules,
  renderIptablesRestore,
  resolveRuleOptions,
} from './rules.js';
import type { NetnsRef } from './sockets.js';

export type RedirectBackend = 'iptables' | 'nftables';

export interface RedirectTarget {
  /** The namespace: a name under /var/run/netns, a path, or an open fd. Omitted: this process's own namespace. */
  netns?: NetnsRef;
  signal?: AbortSignal;
}

export interface ApplyRedirectOptions extends RuleOptions, RedirectTarget {
  /** Default `'iptables'` (iptables-restore / ip6tables-restore); `'nftables'` uses `nft -f`. */
  backend?: RedirectBackend;
  /** Default `'inpod'`. */
  mode?: RedirectMode;
  /** Install the fwmark rule and local route (needed for source-IP preservation). Default: true in `inpod` mode, false in `dedicated`. */
  routing?: boolean;
}

/** What {@link applyRedirect} installed, as text a person can read. */
export interface AppliedRedirect {
  backend: RedirectBackend;
  mode: RedirectMode;
  /** The iptables-restore input used (iptables backend). */
  iptables?: IptablesRestoreInput;
  /** The nft script used (nftables backend). */
  nft?: string;
  /** The `ip` commands run (when routing is on). */
  routing?: PolicyRouting;
}

const applied = channel('mesh:redirect:rules-applied');
const removed = channel('mesh:redirect:rules-removed');

type Family = 4 | 6;
const tool = (f: Family, what: 'save' | 'restore') =>
  `${f === 4 ? 'iptables' : 'ip6tables'}-${what}`;

/** Our chains and the rules that jump to them, per table, from `iptables-save` output. */
interface IptablesState {
  chains: Map<string, Set<string>>;
  jumps: Map<string, string[]>;
}

function parseSave(text: string): IptablesState {
  const chains = new Map<string, Set<string>>();
  const jumps = new Map<string, string[]>();
  let table = '';
  const ours = IPTABLES_CHAINS as readonly string[];
  for (const line of text.split('\n')) {
    if (line.startsWith('*')) {
      table = line.slice(1).trim();
      chains.set(table, new Set());
      jumps.set(table, []);
    } else if (line.startsWith(':')) {
      const chain = line.slice(1).split(' ')[0] as string;
      if (ours.includes(chain)) chains.get(table)?.add(chain);
    } else if (line.startsWith('-A ')) {
      const words = line.split(' ');
      const chain = words[1] as string;
      const target = words[words.indexOf('-j') + 1];
      if (!ours.includes(chain) && target !== undefined && ours.includes(target))
        jumps.get(table)?.push(line);
    }
  }
  return { chains, jumps };
}

/** Lines that take out what exists of ours in a table, except chains the new set re-declares. */
function teardown(state: IptablesState, table: string, keep: readonly string[]): string[] {
  const out = (state.jumps.get(table) ?? []).map((l) => `-D${l.slice(2)}`);
  for (const chain of state.chains.get(table) ?? []) {
    if (!keep.includes(chain)) out.push(`-F ${chain}`, `-X ${chain}`);
  }
  return out;
}

async function iptablesFamily(
  f: Family,
  mode: RedirectMode | undefined,
  o: RuleOptions,
  target: RedirectTarget,
): Promise<{ input: string | undefined; emptied: string[] }> {
  const { stdout } = await run([tool(f, 'save')], target);
  const state = parseSave(stdout);
  const set = mode === undefined ? {} : iptablesRuleSet(mode, f, o);
  const prelude: Record<string, string[]> = {};
  const emptied: string[] = [];
  for (const table of IPTABLES_TABLES) {
    prelude[table] = teardown(state, table, chainsOf(set[table] ?? []));
    if ((prelude[table] as string[]).length > 0 && !set[table]) emptied.push(table);
  }
  const input = renderIptablesRestore(set, prelude);
  if (input.trim() === '') return { input: undefined, emptied };
  // --noflush: leave everything else alone; `:CHAIN` lines create or flush our chains, and the
  // whole input commits as one transaction.
  await run([tool(f, 'restore'), '--noflush', '--wait=10'], { ...target, input });
  return { input, emptied };
}

interface NftItem {
  chain?: { hook?: string; policy?: string };
  rule?: unknown;
  set?: unknown;
  map?: unknown;
}

/**
 * iptables-nft creates an nftables table the first time a rule goes into it and never deletes
 * it. Where we just took our chains out of such a table and it is now empty (no rules, no
 * user chains, every policy ACCEPT, so it does nothing), delete it so no trace remains.
 */
async function dropEmptyIptablesNftTables(
  f: Family,
  tables: string[],
  target: RedirectTarget,
): Promise<void> {
  const family = f === 4 ? 'ip' : 'ip6';
  for (const table of tables) {
    let items: NftItem[];
    try {
      const { stdout } = await run(['nft', '-j', 'list', 'table', family, table], target);
      items = (JSON.parse(stdout) as { nftables: NftItem[] }).nftables;
    } catch {
      return; // no nft (iptables-legacy world) or no such table: nothing to drop
    }
    const idle = items.every(
      (i) =>
        i.rule === undefined &&
        i.set === undefined &&
        i.map === undefined &&
        (!i.chain || (i.chain.hook && i.chain.policy === 'accept')),
    );
    if (idle) await run(['nft', 'delete', 'table', family, table], target);
  }
}

async function removeIptablesFamily(f: Family, target: RedirectTarget): Promise<void> {
  try {
    const { emptied } = await iptablesFamily(f, undefined, {}, target);
    await dropEmptyIptablesNftTables(f, emptied, target);
  } catch (err) {
    // Without the tool, no rules of that backend can exist.
    if (!(err instanceof RedirectError && err.code === 'ERR_REDIRECT_COMMAND_MISSING')) throw err;
  }
}

async function removeIptables(target: RedirectTarget): Promise<void> {
  await removeIptablesFamily(4, target);
  await removeIptablesFamily(6, target);
}

async function removeNft(target: RedirectTarget): Promise<void> {
  try {
    await run(['nft', '-f', '-'], { ...target, input: removeNftRules() });
  } catch (err) {
    if (!(err instanceof RedirectError && err.code === 'ERR_REDIRECT_COMMAND_MISSING')) throw err;
  }
}

interface IpRule {
  priority?: number;
  table?: string;
  fwmark?: string;
  fwmask?: string;
}

/** Whether our fwmark rule (same priority, mark, mask and table) is installed. */
async function hasRule(
  f: Family,
  o: Required<RuleOptions>,
  target: RedirectTarget,
): Promise<boolean> {
  const { stdout } = await run(['ip', '-j', `-${f}`, 'rule', 'show'], target);
  const rules = JSON.parse(stdout || '[]') as IpRule[];
  const hex = (n: number) => `0x${n.toString(16)}`;
  return rules.some(
    (r) =>
      r.priority === o.rulePriority &&
      r.table === String(o.routeTable) &&
      r.fwmark === hex(o.tproxyMark) &&
      (r.fwmask ?? '0xffffffff') === hex(o.markMask),
  );
}

const gone = /No such file or directory|No such process|Cannot find|does not exist/i;

async function removeRouting(o: Required<RuleOptions>, target: RedirectTarget): Promise<void> {
  const routes = policyRouting({ ...o, ipv6: true });
  for (const [f, fam] of [
    [4, routes.ipv4],
    [6, routes.ipv6],
  ] as const) {
    if (!fam) continue;
    while (await hasRule(f, o, target)) {
      await run(['ip', ...fam.rule.map((a) => (a === 'add' ? 'del' : a))], target);
    }
    try {
      await run(['ip', ...fam.route.map((a) => (a === 'add' ? 'del' : a))], target);
    } catch (err) {
      if (!gone.test((err as CommandFailure).stderr ?? '')) throw err;
    }
  }
}

async function applyRouting(
  routes: PolicyRouting,
  o: Required<RuleOptions>,
  target: RedirectTarget,
) {
  for (const [f, fam] of [
    [4, routes.ipv4],
    [6, routes.ipv6],
  ] as const) {
    if (!fam) continue;
    if (!(await hasRule(f, o, target))) await run(['ip', ...fam.rule], target);
    await run(['ip', ...fam.route.map((a) => (a === 'add' ? 'replace' : a))], target);
  }
}

function failure(action: string, cause: unknown, rollback?: unknown): RedirectError {
  if (cause instanceof RedirectError && cause.code !== 'ERR_REDIRECT_RULES_FAILED') return cause;
  const why = cause instanceof Error ? cause.message : String(cause);
  const tail =
    rollback === undefined
      ? ''
      : `; rolling back also failed: ${(rollback as Error).message ?? String(rollback)}`;
  const err = new RedirectError('ERR_REDIRECT_RULES_FAILED', `${action} failed: ${why}${tail}`, {
    cause,
  });
  if (rollback !== undefined) Object.assign(err, { rollbackError: rollback });
  return err;
}

/**
 * Installs the redirect rules (and, in-pod, the policy routing) in a network namespace.
 * Idempotent: re-applying replaces our chains/tables atomically and never duplicates rules;
 * switching backend or mode removes the previous set. On failure everything of ours is
 * removed again before the error (ERR_REDIRECT_RULES_FAILED) is thrown.
 */
export async function applyRedirect(options: ApplyRedirectOptions = {}): Promise<AppliedRedirect> {
  const o = resolveRuleOptions(options);
  const backend = options.backend ?? 'iptables';
  const mode = options.mode ?? 'inpod';
  if (backend !== 'iptables' && backend !== 'nftables') {
    throw new RedirectError(
      'ERR_REDIRECT_INVALID_ARGUMENT',
      `backend must be 'iptables' or 'nftables'`,
    );
  }
  if (mode !== 'inpod' && mode !== 'dedicated') {
    throw new RedirectError('ERR_REDIRECT_INVALID_ARGUMENT', `mode must be 'inpod' or 'dedicated'`);
  }
  const withRouting = options.routing ?? mode === 'inpod';
  const target: RedirectTarget = { netns: options.netns, signal: options.signal };
  const result: AppliedRedirect = { backend, mode };
  try {
    if (backend === 'iptables') {
      await removeNft(target);
      result.iptables = { ipv4: (await iptablesFamily(4, mode, o, target)).input ?? '' };
      if (o.ipv6) {
        const { input } = await iptablesFamily(6, mode, o, target);
        if (input !== undefined) result.iptables.ipv6 = input;
      } else {
        await removeIptablesFamily(6, target);
      }
    } else {
      await removeIptables(target);
      result.nft = mode === 'inpod' ? inpodNftRules(o) : dedicatedNftRules(o);
      await run(['nft', '-f', '-'], { ...target, input: result.nft });
    }
    if (withRouting) {
      result.routing = policyRouting(o);
      await applyRouting(result.routing, o, target);
    } else {
      await removeRouting(o, target);
    }
  } catch (err) {
    if (options.signal?.aborted && err === options.signal.reason) {
      await removeAll(o, { netns: options.netns }).catch(() => undefined);
      throw err;
    }
    let rollback: unknown;
    try {
      await removeAll(o, { netns: options.netns });
    } catch (e) {
      rollback = e;
    }
    throw failure('applying redirect rules', err, rollback);
  }
  if (applied.hasSubscribers)
    applied.publish({ netns: options.netns, backend, mode, routing: withRouting });
  return result;
}

async function removeAll(o: Required<RuleOptions>, target: RedirectTarget): Promise<void> {
  const errors: unknown[] = [];
  for (const step of [
    () => removeIptables(target),
    () => removeNft(target),
    () => removeRouting(o, target),
  ]) {
    try {
      await step();
    } catch (err) {
      errors.push(err);
    }
  }
  if (errors.length > 0) throw errors[0];
}

/**
 * Removes everything {@link applyRedirect} may have installed, with either backend and in
 * either mode: our iptables chains and the jumps to them, our nft tables, the fwmark rule and
 * the local route. Idempotent; a namespace without them is left as it is.
 */
export async function removeRedirect(options: RuleOptions & RedirectTarget = {}): Promise<void> {
  const o = resolveRuleOptions(options);
  try {
    await removeAll(o, { netns: options.netns, signal: options.signal });
  } catch (err) {
    if (options.signal?.aborted && err === options.signal.reason) throw err;
    throw failure('removing redirect rules', err);
  }
  if (removed.hasSubscribers) removed.publish({ netns: options.netns });
}
