import { SETTINGS } from './settings.js';

const cell = (s: string) => s.replaceAll('|', '\\|').replaceAll('\n', ' ');
const envOf = (s: (typeof SETTINGS)[number]) =>
  s.env ? `\`${s.env}\`` : s.key === 'proxyMetadata' ? '`ISTIO_META_<KEY>`' : '—';

/** `docs/reference/configuration.md`, rendered from the settings table so the two cannot drift. */
export function renderConfigurationReference(): string {
  const row = (s: (typeof SETTINGS)[number]) =>
    `| ${envOf(s)} | ${cell(`\`--${s.flag} <${s.arg}>\``)} | \`${s.key}\` | ${cell(s.defaultText)} | ${cell(s.description)} |`;
  const head = [
    '| Environment | Flag | Settings file key | Default | Meaning |',
    '|---|---|---|---|---|',
  ];
  return [
    '# ztunnel configuration reference',
    '',
    '<!-- Generated from packages/ztunnel/src/config/settings.ts by `pnpm --filter @mesh/ztunnel docs:config`; a test fails when it is stale. -->',
    '',
    'Every setting of the `@mesh/ztunnel` binary. Each can be given three ways; the first one',
    'present wins: **command-line flag > environment variable > settings file > default**.',
    '',
    "- Environment variables use Istio ztunnel's names, so an Istio operator's manifests carry over.",
    '- The settings file (`--config <file>`) is YAML whose keys are the camelCase names in the',
    '  third column; unknown keys are errors. `proxyMetadata` is a mapping.',
    '- Durations accept `500ms`, `5s`, `5m`, `24h`, `1h30m` (a bare number is seconds). Byte sizes',
    '  accept integers and `Ki`/`Mi`/`Gi` suffixes. Booleans accept `true`/`false`.',
    '- Every bad value is reported at once, naming the flag, variable or file key that carried it;',
    '  the process then exits with code 2 without starting anything.',
    '',
    "## Istio ztunnel's settings",
    '',
    ...head,
    ...SETTINGS.filter((s) => !s.extension).map(row),
    '',
    '## Extensions of this implementation',
    '',
    'Every listener address is configurable (ztunnel binds fixed ports), which lets several',
    'proxies share one host without root, as `pnpm demo` does.',
    '',
    ...head,
    ...SETTINGS.filter((s) => s.extension).map(row),
    '',
    '## Not supported',
    '',
    'Shared (in-pod) mode and its settings (`INPOD_UDS`, `INPOD_PORT_REUSE`), the DNS proxy',
    '(`DNS_CAPTURE`, `DNS_PROXY_ADDR`), `XDS_ON_DEMAND`, `CRL_PATH`, `TLS12_ENABLED`,',
    '`COMPLIANCE_POLICY`, `ALT_XDS_HOSTNAME`/`ALT_CA_HOSTNAME`, `XDS_HEADER_*`/`CA_HEADER_*`,',
    "the `KEEPALIVE_*` variables (fixed at ztunnel's defaults) and the",
    '`ZTUNNEL_WORKER_THREADS` family (Node runs one event loop) are not read.',
    '',
    '## Local config file (`LOCAL_XDS_PATH` / `LOCAL_XDS`)',
    '',
    "ztunnel's format: YAML with top-level `workloads`, `services` and `policies`, camelCase keys,",
    'unknown keys rejected, and no xDS defaults (an empty `trustDomain` stays empty; identities',
    'then fall back to `TRUST_DOMAIN` and service account `default`). String matchers in',
    'policies are written `!Exact x`, `!Prefix x`, `!Suffix x`, `!Presence`, or `{Exact: x}`.',
    'The file is re-read when it changes; an invalid new version is logged and ignored, so the',
    'running state never changes to a broken one. At startup an invalid file exits with code 2',
    'and a list of every problem with its path (`workloads[0].workloadIps[1]: ...`).',
    'See `packages/ztunnel/README.md` for an example.',
    '',
  ].join('\n');
}
