import type { Registry } from 'prom-client';

/** Samples of one metric after a collect, as `{ labels, value }`. */
export async function samples(
  registry: Registry,
  name: string,
): Promise<{ labels: Record<string, string | number>; value: number }[]> {
  const metric = registry.getSingleMetric(name);
  if (!metric) throw new Error(`no metric ${name}`);
  const data = await metric.get();
  return data.values.map((v) => ({
    labels: { ...v.labels } as Record<string, string | number>,
    value: v.value,
  }));
}

/** Sum of a metric's samples whose labels include `match`. */
export async function total(
  registry: Registry,
  name: string,
  match: Record<string, string> = {},
): Promise<number> {
  let sum = 0;
  for (const s of await samples(registry, name)) {
    if (Object.entries(match).every(([k, v]) => s.labels[k] === v)) sum += s.value;
  }
  return sum;
}
