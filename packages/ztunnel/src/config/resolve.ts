import { readFileSync } from 'node:fs';
import { parse as parseYaml } from 'yaml';
import { ZtunnelError } from '../errors.js';
import { SETTINGS, type SettingSpec, type ZtunnelConfig } from './settings.js';
import { isInvalid } from './values.js';

export interface ResolveInput {
  /** Values given as command-line flags, keyed by setting key (strings, or arrays for repeatable ones). */
  flags?: Partial<Record<keyof ZtunnelConfig, string | string[]>>;
  /** The environment; `process.env` when omitted. */
  env?: Record<string, string | undefined>;
  /** Path of a YAML settings file whose keys are setting keys (camelCase). */
  settingsFile?: string;
}

type Layer = 'flag' | 'env' | 'file';

/**
 * Builds the configuration with precedence flag > environment > settings file > default, and
 * reports every bad value at once as a `ZtunnelError` `ERR_ZTUNNEL_CONFIG_INVALID`.
 */
export function resolveConfig(input: ResolveInput = {}): ZtunnelConfig {
  const env = input.env ?? process.env;
  const problems: string[] = [];
  const fileValues = input.settingsFile ? readSettingsFile(input.settingsFile, problems) : {};
  const out: Partial<Record<keyof ZtunnelConfig, unknown>> = {};
  const set = new Set<keyof ZtunnelConfig>();

  for (const spec of SETTINGS) {
    if (spec.key === 'proxyMetadata') continue;
    const flag = input.flags?.[spec.key];
    const candidates: [Layer, string | undefined][] = [
      ['flag', Array.isArray(flag) ? flag.at(-1) : flag],
      ['env', spec.env ? env[spec.env] : undefined],
      ['file', fileValues[spec.key]],
    ];
    // ISTIO_META_CLUSTER_ID wins over CLUSTER_ID, as in ztunnel.
    if (spec.key === 'clusterId' && env.ISTIO_META_CLUSTER_ID) {
      candidates[1] = ['env', env.ISTIO_META_CLUSTER_ID];
    }
    const hit = candidates.find(([, v]) => v !== undefined);
    if (!hit) continue;
    const [layer, raw] = hit;
    const parsed = spec.parse(raw!);
    if (isInvalid(parsed)) {
      problems.push(`${describe(spec, layer)}: ${parsed.invalid}`);
      continue;
    }
    // An empty XDS_ADDRESS / CA_ADDRESS explicitly disables that client.
    out[spec.key] =
      parsed === '' && (spec.key === 'xdsAddress' || spec.key === 'caAddress') ? undefined : parsed;
    set.add(spec.key);
  }

  out.proxyMetadata = resolveMetadata(input, env, fileValues, problems);

  // Defaults in table order, so a default may read settings above it (ipv6Enabled before listeners).
  for (const spec of [...SETTINGS].sort((a, b) => Number(isListener(a)) - Number(isListener(b)))) {
    if (set.has(spec.key) || spec.key === 'proxyMetadata') continue;
    out[spec.key] = typeof spec.default === 'function' ? spec.default(out, env) : spec.default;
  }
  const config = out as ZtunnelConfig;
  problems.push(...crossCheck(config));
  if (problems.length > 0) {
    throw new ZtunnelError(
      'ERR_ZTUNNEL_CONFIG_INVALID',
      `invalid configuration:\n${problems.map((p) => `  - ${p}`).join('\n')}`,
      { problems },
    );
  }
  return config;
}

function isListener(s: SettingSpec): boolean {
  return s.arg === 'host:port';
}

function describe(spec: SettingSpec, layer: Layer): string {
  if (layer === 'flag') return `--${spec.flag}`;
  if (layer === 'env') return spec.env!;
  return `settings file key "${spec.key}"`;
}

function resolveMetadata(
  input: ResolveInput,
  env: Record<string, string | undefined>,
  fileValues: Record<string, string>,
  problems: string[],
): Record<string, string> {
  const meta: Record<string, string> = {};
  for (const [k, v] of Object.entries(fileValues)) {
    if (k.startsWith('proxyMetadata.')) meta[k.slice('proxyMetadata.'.length)] = v;
  }
  for (const [k, v] of Object.entries(env)) {
    if (k.startsWith('ISTIO_META_') && k.length > 'ISTIO_META_'.length && v !== undefined) {
      meta[k.slice('ISTIO_META_'.length)] = v;
    }
  }
  const flag = input.flags?.proxyMetadata;
  for (const item of flag === undefined ? [] : Array.isArray(flag) ? flag : [flag]) {
    const i = item.indexOf('=');
    if (i <= 0) problems.push(`--meta: "${item}" is not KEY=value`);
    else meta[item.slice(0, i)] = item.slice(i + 1);
  }
  return meta;
}

function readSettingsFile(path: string, problems: string[]): Record<string, string> {
  let doc: unknown;
  try {
    doc = parseYaml(readFileSync(path, 'utf8'));
  } catch (err) {
    problems.push(`settings file ${path}: ${(err as Error).message}`);
    return {};
  }
  if (doc === null || doc === undefined) return {};
  if (typeof doc !== 'object' || Array.isArray(doc)) {
    problems.push(`settings file ${path}: the top level must be a mapping of setting names`);
    return {};
  }
  const known = new Set<string>(SETTINGS.map((s) => s.key));
  const values: Record<string, string> = {};
  for (const [k, v] of Object.entries(doc as Record<string, unknown>)) {
    if (!known.has(k)) {
      problems.push(`settings file ${path}: unknown key "${k}"`);
    } else if (k === 'proxyMetadata') {
      if (typeof v !== 'object' || v === null || Array.isArray(v)) {
        problems.push(`settings file ${path}: "proxyMetadata" must be a mapping`);
      } else {
        for (const [mk, mv] of Object.entries(v)) values[`proxyMetadata.${mk}`] = String(mv);
      }
    } else if (v === null || typeof v === 'object') {
      problems.push(`settings file ${path}: "${k}" must be a scalar`);
    } else {
      values[k] = String(v);
    }
  }
  return values;
}

function crossCheck(c: ZtunnelConfig): string[] {
  const problems: string[] = [];
  if (c.localXds !== undefined && c.localXdsPath !== undefined) {
    problems.push('LOCAL_XDS and LOCAL_XDS_PATH are mutually exclusive; set one');
  }
  if (c.proxyMode === 'shared') {
    problems.push(
      'PROXY_MODE=shared (in-pod mode fed by istio-cni) is not implemented yet; use PROXY_MODE=dedicated',
    );
  }
  if (c.proxyMode === 'dedicated' && c.workloadInfo === undefined) {
    problems.push(
      'PROXY_WORKLOAD_INFO (namespace/name/serviceaccount) is required in dedicated mode',
    );
  }
  if (c.localXds === undefined && c.localXdsPath === undefined && c.xdsAddress === undefined) {
    problems.push('no configuration source: set LOCAL_XDS_PATH, LOCAL_XDS or XDS_ADDRESS');
  }
  if (c.http2FrameSize < 16384 || c.http2FrameSize > 16_777_215) {
    problems.push(`HTTP2_FRAME_SIZE ${c.http2FrameSize} is outside 16384..16777215`);
  }
  if (c.http2StreamWindowSize > 0x7fff_ffff || c.http2ConnectionWindowSize > 0x7fff_ffff) {
    problems.push('HTTP/2 window sizes must be at most 2147483647');
  }
  return problems;
}
