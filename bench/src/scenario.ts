/**
 * The contract between the bench runner and a scenario. A scenario is a module in
 * `src/scenarios/` whose default export is a {@link Scenario}; the runner discovers it.
 */

export interface ScenarioContext {
  /** `--quick`: the smallest counts that still exercise the whole path (CI smoke run). */
  quick: boolean;
  /** `--profile`: write CPU profiles of the processes under test into `profileDir`. */
  profile: boolean;
  profileDir: string;
  /** A scratch directory for this scenario, removed after it ran. */
  tmpDir: string;
  /** Aborted when the scenario's time budget runs out or the user interrupts. */
  signal: AbortSignal;
  /** Progress line for the console. */
  log(message: string): void;
}

/** One figure. Figures that name `compareTo` are reported as ratios to those baselines. */
export interface Measurement {
  /** Unique within the scenario, e.g. `hbone 1 tunnel`, `stunnel4`, `direct TCP`. */
  name: string;
  /** e.g. `Gb/s`, `ops/s`, `ms`, `MiB`, `KiB/tunnel`. */
  unit: string;
  value: number;
  /** Which direction is better, so ratios can be read as "x times better/worse". */
  better: 'higher' | 'lower';
  /** Names of baseline measurements in the same scenario result. */
  compareTo?: string[];
  /** Extra figures: latency percentiles (`p50`, `p90`, `p99`), counts, CPU seconds. */
  extra?: Record<string, number>;
}

export interface ScenarioResult {
  measurements: Measurement[];
  /** Context a reader needs: sizes, counts, caveats. */
  notes?: string[];
}

export interface ScenarioRequirements {
  /** Must run as root (network namespaces, iptables, privileged sockets). */
  root?: boolean;
  /** Executables that must be on PATH, e.g. `stunnel4`, `iperf3`. */
  commands?: string[];
  /**
   * Any other precondition: return (or resolve to) a reason to skip, or `undefined` to run,
   * e.g. "packages/ztunnel has no runnable entry point yet".
   */
  check?: () => string | undefined | Promise<string | undefined>;
}

export interface Scenario {
  /** `<area>/<what>`, e.g. `spiffe/csr-sign`, `hbone/throughput`; filterable by regex. */
  name: string;
  description: string;
  /** `micro` (in-process) or `e2e` (several processes). */
  kind: 'micro' | 'e2e';
  /** What must be present; the runner skips the scenario with the reason otherwise. */
  requires?: ScenarioRequirements;
  /**
   * Time budget of a full run in milliseconds (default 60 s for `micro`, 180 s for `e2e`);
   * `--quick` allows a fifth of it, at least 30 s. When it runs out `ctx.signal` aborts.
   */
  budgetMs?: number;
  run(ctx: ScenarioContext): Promise<ScenarioResult>;
}
