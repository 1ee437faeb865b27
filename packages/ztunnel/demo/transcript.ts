/** Small helpers for a readable demo transcript. */
const color = process.stdout.isTTY && !process.env.NO_COLOR;
const c = (code: number) => (s: string) => (color ? `\x1b[${code}m${s}\x1b[0m` : s);
export const bold = c(1);
export const dim = c(2);
export const green = c(32);
export const red = c(31);
export const cyan = c(36);

export class Transcript {
  readonly results: { step: string; ok: boolean }[] = [];

  check(step: string, ok: boolean, detail = ''): void {
    this.results.push({ step, ok });
    console.log(`  ${ok ? green('✔') : red('✘')} ${step}${detail ? dim(`  ${detail}`) : ''}`);
  }

  heading(n: number, title: string): void {
    console.log(`\n${bold(`${n}. ${title}`)}`);
  }

  /** Prints the summary; returns the exit code (0 when every check passed). */
  summary(): number {
    const failed = this.results.filter((r) => !r.ok);
    console.log(
      `\n${bold('Summary')}: ${this.results.length - failed.length}/${this.results.length} checks passed${failed.length ? red(` (failed: ${failed.map((f) => f.step).join('; ')})`) : ''}`,
    );
    return failed.length === 0 ? 0 : 1;
  }
}

export const indent = (text: string, by = '     ') =>
  text
    .trimEnd()
    .split('\n')
    .map((l) => by + l)
    .join('\n');

/** The istio_tcp_connections_* lines of a scrape, with the long middle of each label set elided. */
export function metricsExcerpt(metrics: string, lines = 6): string {
  return metrics
    .split('\n')
    .filter(
      (l) => /^istio_tcp_connections_(opened|closed)_total\{/.test(l) || /^istio_build/.test(l),
    )
    .map((l) =>
      l
        .replace(/,source_canonical_revision.*?destination_workload=/, ',…,destination_workload=')
        .replace(/,destination_canonical_service.*?response_flags=/, ',…,response_flags=')
        .replace(/,source_region=.*\}/, '}'),
    )
    .slice(0, lines)
    .join('\n');
}

export const POLICY_NOTE = '(HTTP/2 CONNECT answered 401)';

/** istiod's static STRICT policy (PeerAuthentication STRICT) in local config form. */
export const STATIC_STRICT_YAML = `- name: istio_converted_static_strict
  namespace: istio-system
  scope: WorkloadSelector
  action: Deny
  dryRun: false
  rules:
  - - - notPrincipals: [!Presence ]
`;
