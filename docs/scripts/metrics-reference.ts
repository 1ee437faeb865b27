/**
 * Builds `docs/reference/metrics.md` from `@mesh/metrics`' own series definitions and label
 * lists, with the meaning of each label kept here. Throws when a label has no meaning or a
 * meaning names a label that no longer exists; the docs test fails when the file is stale.
 *
 *   pnpm --filter @mesh/docs metrics
 */
import { writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import {
  BUILD_METRIC,
  LOCALITY_LABEL_NAMES,
  type MetricDefinition,
  RESPONSE_FLAGS,
  TRAFFIC_LABEL_NAMES,
  TRAFFIC_METRICS,
  XDS_METRICS,
} from '@mesh/metrics';

export const metricsReferencePath = join(
  dirname(fileURLToPath(import.meta.url)),
  '..',
  'reference',
  'metrics.md',
);

const SERIES_NOTES: Record<string, string> = {
  istio_tcp_connections_opened_total:
    'counted when the connection is set up, under the labels it opened with (`response_flags="-"`)',
  istio_tcp_connections_closed_total: 'counted at close; `response_flags` says how it ended',
  istio_tcp_received_bytes_total: 'request direction (client → server), for both reporters',
  istio_tcp_sent_bytes_total: 'response direction (server → client), for both reporters',
  istio_tcp_connections_failed_total: 'closes with any flag other than `-`',
  istio_tcp_sockets_open: 'sockets handed to `TrafficMetrics.trackSocket()`, by reporter',
  istio_build: 'always 1; `component="ztunnel"`, `tag` = the Istio version',
  istio_xds_connection_terminations_total: 'xDS streams that ended, by reason',
  istio_xds_message_total: 'xDS responses received, by type URL',
  istio_xds_message_bytes_total: 'bytes of xDS responses, by type URL',
};

const TRAFFIC_LABELS: Record<string, string> = {
  reporter:
    '`source` on the outbound side (15001, SOCKS5), `destination` on the inbound side (15008, 15006)',
  source_workload: 'source workload name (Deployment, Job, ... name)',
  source_canonical_service: 'source canonical service (`service.istio.io/canonical-name`)',
  source_canonical_revision: 'source canonical revision',
  source_workload_namespace: 'source namespace',
  source_principal:
    "source SPIFFE ID, only from a verified TLS identity: outbound HBONE, our own; inbound HBONE, the peer certificate's; plaintext: `unknown`",
  source_app: 'source canonical service; from baggage, the workload name (a ztunnel quirk, kept)',
  source_version: 'source canonical revision',
  source_cluster: 'source cluster ID (`Kubernetes` by default)',
  destination_service:
    'service hostname: outbound, the service the client addressed; inbound, `Forwarded: host=` or the service whose target port matches',
  destination_service_namespace: 'service namespace',
  destination_service_name: 'service name',
  destination_workload: 'workload connected to (through a waypoint: the waypoint)',
  destination_canonical_service: 'its canonical service',
  destination_canonical_revision: 'its canonical revision',
  destination_workload_namespace: 'its namespace',
  destination_principal:
    'its identity `spiffe://<td>/ns/<ns>/sa/<sa>` from WDS; double HBONE: the inner TLS peer',
  destination_app: 'its canonical service',
  destination_version: 'its canonical revision',
  destination_cluster: 'its cluster ID',
  request_protocol: 'always `tcp`',
  response_flags: 'how the connection ended (table below)',
  connection_security_policy:
    '`mutual_tls` for HBONE (15008, outbound HBONE, double HBONE), `unknown` for plain TCP and 15006',
  source_region: 'locality (see the note on locality labels)',
  source_zone: 'locality',
  destination_region: 'locality',
  destination_zone: 'locality',
};

const OTHER_LABELS: Record<string, string> = {
  component: 'always `ztunnel`',
  tag: 'the Istio version the build corresponds to',
  reason:
    '`ConnectionError` (never got an answer), `Error` (failed, backoff), `Reconnect` (transient, at once), `Complete` (ended cleanly)',
  url: 'the resource type URL, e.g. `type.googleapis.com/istio.workload.Address`',
};

const FLAGS: Record<string, string> = {
  '-': 'no failure',
  DENY: 'refused by policy (RBAC)',
  CONNECT: 'the connection to the next hop or the app failed',
  TLS_FAILURE: 'the TLS handshake failed',
  H2_HANDSHAKE_FAILURE: 'the HTTP/2 setup failed',
  NETWORK_POLICY: 'dialling HBONE port 15008 timed out (often a NetworkPolicy)',
  IDENTITY_ERROR: 'no certificate for the identity, or the peer identity was wrong',
  CERT_REVOKED: 'a certificate in the chain was revoked',
};

function check(table: Record<string, string>, names: readonly string[], what: string): void {
  const missing = names.filter((l) => !(l in table));
  const extra = Object.keys(table).filter((l) => !names.includes(l));
  if (missing.length || extra.length) {
    throw new Error(
      `${what}: no meaning for [${missing.join(', ')}]; unknown [${extra.join(', ')}]`,
    );
  }
}

export const allSeries: MetricDefinition[] = [
  ...Object.values(TRAFFIC_METRICS),
  BUILD_METRIC,
  ...Object.values(XDS_METRICS),
];

export function renderMetricsReference(): string {
  check(TRAFFIC_LABELS, TRAFFIC_LABEL_NAMES, 'traffic labels');
  check(FLAGS, RESPONSE_FLAGS, 'response flags');
  check(
    SERIES_NOTES,
    allSeries.map((s) => s.name),
    'series',
  );
  const otherLabels = [
    ...new Set(
      allSeries
        .flatMap((s) => s.labelNames)
        .filter((l) => !TRAFFIC_LABEL_NAMES.includes(l as never)),
    ),
  ];
  check(OTHER_LABELS, otherLabels, 'other labels');

  const labelsOf = (s: MetricDefinition) =>
    s.labelNames.length === TRAFFIC_LABEL_NAMES.length
      ? 'traffic labels'
      : s.labelNames.map((l) => `\`${l}\``).join(', ');
  const lines = [
    '# Metrics reference',
    '',
    'Every series `@mesh/metrics` registers (and `@mesh/ztunnel` serves on `:15020/metrics` and',
    "`/stats/prometheus`), with ztunnel's names, label order, HELP text and `unknown` for empty",
    "values, so Istio's dashboards and alerts work unchanged. Registered only on the prom-client",
    '`Registry` you pass; nothing touches the global registry. Families without samples are not',
    'exposed. In OpenMetrics, counter families are named without `_total` and samples with it.',
    '',
    "<!-- Generated from @mesh/metrics' definitions by `pnpm --filter @mesh/docs metrics`. -->",
    '',
    '## Series',
    '',
    '| series | type | labels | stable | HELP | notes |',
    '|---|---|---|---|---|---|',
    ...allSeries.map(
      (s) =>
        `| \`${s.name}\` | ${s.type} | ${labelsOf(s)} | ${s.stable ? 'yes' : 'no'} | ${s.help} | ${SERIES_NOTES[s.name]} |`,
    ),
    '',
    'Registered by: `TrafficMetrics` (the `istio_tcp_*` series), `registerBuildInfo` (`istio_build`),',
    '`XdsMetrics` (`istio_xds_*`), or all at once by `createZtunnelMetrics({ registry, tag })`.',
    '',
    '## Traffic labels',
    '',
    "On every `istio_tcp_*` series except `istio_tcp_sockets_open`, in this order (ztunnel's",
    '`CommonTrafficLabels`). Empty values are `unknown`.',
    '',
    '| label | value |',
    '|---|---|',
    ...TRAFFIC_LABEL_NAMES.map((l) => `| \`${l}\` | ${TRAFFIC_LABELS[l]} |`),
    '',
    `Locality labels (${LOCALITY_LABEL_NAMES.map((l) => `\`${l}\``).join(', ')}) are present only once`,
    'source or destination information was applied; then all four are, `unknown` when not set.',
    '',
    'How the source is filled: first from the verified TLS identity and the `baggage` header,',
    'then, field by field, from the workload found by source IP in the local state, which wins',
    '(except `source_principal`). Requests arriving through a gateway (`x-forwarded-network`',
    'differs from the local network) use only the baggage.',
    '',
    '## Other labels',
    '',
    '| label | value |',
    '|---|---|',
    ...otherLabels.map((l) => `| \`${l}\` | ${OTHER_LABELS[l]} |`),
    '',
    '## Response flags',
    '',
    '| `response_flags` | meaning |',
    '|---|---|',
    ...RESPONSE_FLAGS.map((f) => `| \`${f}\` | ${FLAGS[f]} |`),
    '',
    'Access-log records (`mesh:metrics:access-log`) and their fields are described in the',
    '[`@mesh/metrics` guide](../guides/metrics.md) and the package README.',
    '',
  ];
  return lines.join('\n');
}

if (process.argv.includes('--write')) {
  writeFileSync(metricsReferencePath, renderMetricsReference());
  console.log(`wrote ${metricsReferencePath}`);
}
