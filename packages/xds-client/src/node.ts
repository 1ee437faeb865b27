import type { google } from './gen/proto.js';

/** A JSON value, as carried in a `google.protobuf.Struct`. */
export type JsonValue = string | number | boolean | null | JsonValue[] | { [k: string]: JsonValue };

/** Who this proxy is, as ztunnel tells istiod (see the spec's §4.4). */
export interface NodeOptions {
  /** `INSTANCE_IP`; default `1.1.1.1`, as ztunnel. */
  instanceIp?: string;
  /** `POD_NAME`. */
  podName: string;
  /** `POD_NAMESPACE`. */
  podNamespace: string;
  /** `NODE_NAME`; sent as metadata `NODE_NAME` when set. */
  nodeName?: string;
  /**
   * Proxy metadata (`ISTIO_META_*` without the prefix, mesh `proxyMetadata`,
   * `ISTIO_METAJSON_*` values). Merged after the four fixed keys, which it may not replace.
   */
  metadata?: Record<string, JsonValue>;
  /** Override the computed node id. */
  id?: string;
}

/** The node as sent on the wire, in plain form. */
export interface NodeInfo {
  id: string;
  metadata: Record<string, JsonValue>;
}

/** `ztunnel~<ip>~<pod>.<ns>~<ns>.svc.cluster.local` and the metadata ztunnel sends. */
export function buildNode(options: NodeOptions): NodeInfo {
  const ip = options.instanceIp || '1.1.1.1';
  const ns = options.podNamespace;
  const fixed: Record<string, JsonValue> = {
    NAME: options.podName,
    NAMESPACE: ns,
    INSTANCE_IPS: ip,
  };
  if (options.nodeName !== undefined) fixed.NODE_NAME = options.nodeName;
  return {
    id: options.id ?? `ztunnel~${ip}~${options.podName}.${ns}~${ns}.svc.cluster.local`,
    metadata: { ...options.metadata, ...fixed },
  };
}

export function toProtoValue(v: JsonValue): google.protobuf.Value.$Properties {
  if (v === null) return { nullValue: 0 };
  if (typeof v === 'string') return { stringValue: v };
  if (typeof v === 'number') return { numberValue: v };
  if (typeof v === 'boolean') return { boolValue: v };
  if (Array.isArray(v)) return { listValue: { values: v.map(toProtoValue) } };
  return { structValue: toProtoStruct(v) };
}

export function toProtoStruct(o: Record<string, JsonValue>): google.protobuf.Struct.$Properties {
  const fields: Record<string, google.protobuf.Value.$Properties> = {};
  for (const [k, v] of Object.entries(o)) fields[k] = toProtoValue(v);
  return { fields };
}

export function fromProtoValue(v: google.protobuf.Value.$Properties): JsonValue {
  if (v.stringValue != null) return v.stringValue;
  if (v.numberValue != null) return v.numberValue;
  if (v.boolValue != null) return v.boolValue;
  if (v.listValue != null) return (v.listValue.values ?? []).map(fromProtoValue);
  if (v.structValue != null) return fromProtoStruct(v.structValue);
  return null;
}

export function fromProtoStruct(s: google.protobuf.Struct.$Properties): Record<string, JsonValue> {
  const out: Record<string, JsonValue> = {};
  for (const [k, v] of Object.entries(s.fields ?? {})) out[k] = fromProtoValue(v);
  return out;
}
