import { isIP } from 'node:net';

/**
 * A tiny path-tracking validator: each reader returns the value or `undefined` after recording
 * a problem, so one pass over a document collects every problem.
 */
export class Problems {
  readonly list: string[] = [];
  add(path: string, message: string): undefined {
    this.list.push(path === '' ? message : `${path}: ${message}`);
    return undefined;
  }
}

export type Reader<T> = (p: Problems, path: string, v: unknown) => T | undefined;

const kind = (v: unknown) =>
  v === null
    ? 'null'
    : Array.isArray(v)
      ? 'a list'
      : typeof v === 'object'
        ? 'a mapping'
        : `${typeof v} ${JSON.stringify(v)}`;

export const str: Reader<string> = (p, path, v) =>
  typeof v === 'string'
    ? v
    : typeof v === 'number'
      ? String(v)
      : p.add(path, `expected a string, got ${kind(v)}`);

export const bool: Reader<boolean> = (p, path, v) =>
  typeof v === 'boolean' ? v : p.add(path, `expected true or false, got ${kind(v)}`);

export function uint(max: number): Reader<number> {
  return (p, path, v) => {
    const n = typeof v === 'string' && /^\d+$/.test(v) ? Number(v) : v;
    if (typeof n !== 'number' || !Number.isInteger(n) || n < 0 || n > max) {
      return p.add(path, `expected an integer in 0..${max}, got ${kind(v)}`);
    }
    return n;
  };
}

export const port = uint(65535);

export const ip: Reader<string> = (p, path, v) => {
  const s = str(p, path, v);
  if (s === undefined) return undefined;
  return isIP(s) ? s : p.add(path, `"${s}" is not an IP address`);
};

/** One of the given spellings (matched exactly), mapped to its internal value. */
export function choice<T>(map: Record<string, T>): Reader<T> {
  return (p, path, v) => {
    if (typeof v === 'string' && Object.hasOwn(map, v)) return map[v];
    return p.add(path, `expected one of ${Object.keys(map).join(', ')}, got ${kind(v)}`);
  };
}

export function list<T>(item: Reader<T>): Reader<T[]> {
  return (p, path, v) => {
    if (!Array.isArray(v)) return p.add(path, `expected a list, got ${kind(v)}`);
    const out: T[] = [];
    v.forEach((x, i) => {
      const r = item(p, `${path}[${i}]`, x);
      if (r !== undefined) out.push(r);
    });
    return out;
  };
}

export function isMapping(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** A mapping from keys to values, both read with readers. */
export function mapOf<K, V>(key: Reader<K>, value: Reader<V>): Reader<[K, V][]> {
  return (p, path, v) => {
    if (!isMapping(v)) return p.add(path, `expected a mapping, got ${kind(v)}`);
    const out: [K, V][] = [];
    for (const [k, x] of Object.entries(v)) {
      const rk = key(p, `${path}.${k}`, k);
      const rv = value(p, `${path}.${k}`, x);
      if (rk !== undefined && rv !== undefined) out.push([rk, rv]);
    }
    return out;
  };
}

type Fields = Record<string, Reader<unknown>>;
type Out<F extends Fields> = { [K in keyof F]?: F[K] extends Reader<infer T> ? T : never };

/**
 * A mapping with known fields: unknown keys and missing required keys are problems. Returns the
 * fields read (absent ones `undefined`), or `undefined` when `v` is not a mapping.
 */
export function record<F extends Fields>(
  p: Problems,
  path: string,
  v: unknown,
  fields: F,
  required: readonly (keyof F & string)[] = [],
): Out<F> | undefined {
  if (!isMapping(v)) return p.add(path, `expected a mapping, got ${kind(v)}`);
  const out: Record<string, unknown> = {};
  for (const [k, x] of Object.entries(v)) {
    const reader = Object.hasOwn(fields, k) ? fields[k] : undefined;
    if (!reader) {
      p.add(path, `unknown key "${k}" (known keys: ${Object.keys(fields).join(', ')})`);
      continue;
    }
    out[k] = reader(p, path === '' ? k : `${path}.${k}`, x);
  }
  for (const k of required) {
    if (!Object.hasOwn(v, k)) p.add(path, `missing required key "${k}"`);
  }
  return out as Out<F>;
}
