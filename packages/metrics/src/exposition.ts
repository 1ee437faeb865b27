import type { MetricObjectWithValues, MetricValue, Registry } from 'prom-client';

/** Prometheus text format 0.0.4. */
export const PROMETHEUS_CONTENT_TYPE = 'text/plain; version=0.0.4; charset=utf-8';
/** OpenMetrics 1.0.0 text format. */
export const OPENMETRICS_CONTENT_TYPE =
  'application/openmetrics-text; version=1.0.0; charset=utf-8';

export type ExpositionFormat = 'prometheus' | 'openmetrics';

export function contentTypeOf(format: ExpositionFormat): string {
  return format === 'openmetrics' ? OPENMETRICS_CONTENT_TYPE : PROMETHEUS_CONTENT_TYPE;
}

/**
 * ztunnel's rule: OpenMetrics when any `Accept` entry names `application/openmetrics-text`
 * (whatever its position), else the Prometheus text format. An explicit `q=0` opts out.
 */
export function negotiateFormat(accept: string | readonly string[] | undefined): ExpositionFormat {
  if (accept === undefined) return 'prometheus';
  const text = typeof accept === 'string' ? accept : accept.join(',');
  for (const range of text.split(',')) {
    const [type = '', ...params] = range.split(';');
    if (type.trim().toLowerCase() !== 'application/openmetrics-text') continue;
    const q = params.map((p) => p.trim().toLowerCase()).find((p) => p.startsWith('q='));
    if (q !== undefined && Number(q.slice(2)) === 0) continue;
    return 'openmetrics';
  }
  return 'prometheus';
}

/**
 * Collects `registry` (running every metric's `collect()`) and renders it. Unlike
 * `registry.metrics()`, the format is chosen per call and the registry is left untouched,
 * so one registry can serve both formats concurrently. Families without samples are
 * omitted, as ztunnel's encoder does.
 */
export async function renderRegistry(
  registry: Registry,
  format: ExpositionFormat,
  options: { signal?: AbortSignal } = {},
): Promise<string> {
  options.signal?.throwIfAborted();
  const families = await registry.getMetricsAsJSON();
  options.signal?.throwIfAborted();
  const om = format === 'openmetrics';
  const out: string[] = [];
  for (const family of families as MetricObjectWithValues<MetricValue<string>>[]) {
    const values = family.values ?? [];
    if (values.length === 0) continue;
    const type = String(family.type);
    let name = family.name;
    if (om && type === 'counter' && name.endsWith('_total')) name = name.slice(0, -6);
    out.push(`# HELP ${name} ${escapeHelp(family.help, om)}`);
    out.push(`# TYPE ${name} ${om && type === 'untyped' ? 'unknown' : type}`);
    for (const sample of values) {
      let sampleName = (sample as { metricName?: string }).metricName ?? family.name;
      if (om && type === 'counter' && sampleName === family.name) sampleName = `${name}_total`;
      out.push(`${sampleName}${formatLabels(sample.labels)} ${formatValue(sample.value)}`);
    }
  }
  if (om) out.push('# EOF');
  return out.length === 0 ? '' : `${out.join('\n')}\n`;
}

function escapeHelp(help: string, om: boolean): string {
  const escaped = help.replace(/\\/g, '\\\\').replace(/\n/g, '\\n');
  return om ? escaped.replace(/"/g, '\\"') : escaped;
}

function escapeLabelValue(value: string): string {
  return value.replace(/\\/g, '\\\\').replace(/\n/g, '\\n').replace(/"/g, '\\"');
}

function formatLabels(labels: Partial<Record<string, string | number>> | undefined): string {
  if (labels === undefined) return '';
  let s = '';
  for (const key in labels) {
    const value = labels[key];
    if (value === undefined) continue;
    s += `${s === '' ? '' : ','}${key}="${escapeLabelValue(String(value))}"`;
  }
  return s === '' ? '' : `{${s}}`;
}

function formatValue(value: number): string {
  if (Number.isNaN(value)) return 'NaN';
  if (value === Number.POSITIVE_INFINITY) return '+Inf';
  if (value === Number.NEGATIVE_INFINITY) return '-Inf';
  return String(value);
}
