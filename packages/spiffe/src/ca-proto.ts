import { fileURLToPath } from 'node:url';
import type { ServiceDefinition } from '@grpc/grpc-js';
import { loadSync } from '@grpc/proto-loader';

/** Full gRPC path of the one method, as ztunnel calls it. */
export const CREATE_CERTIFICATE_PATH = '/istio.v1.auth.IstioCertificateService/CreateCertificate';

/** `google.protobuf.Value` as @grpc/proto-loader decodes it (oneofs: true). */
export interface ProtoValue {
  nullValue?: 'NULL_VALUE';
  numberValue?: number;
  stringValue?: string;
  boolValue?: boolean;
  structValue?: ProtoStruct;
  listValue?: { values: ProtoValue[] };
  kind?: string;
}
export interface ProtoStruct {
  fields: Record<string, ProtoValue>;
}

/** `istio.v1.auth.IstioCertificateRequest` in plain-object form. */
export interface IstioCertificateRequest {
  csr: string;
  /** Seconds; int64 decoded as a JS number. */
  validityDuration: number;
  metadata?: ProtoStruct | null;
}

/** `istio.v1.auth.IstioCertificateResponse` in plain-object form. */
export interface IstioCertificateResponse {
  certChain: string[];
}

let cached: ServiceDefinition | undefined;

/** The `IstioCertificateService` definition, loaded once from `proto/istio/v1/auth/ca.proto`. */
export function istioCertificateService(): ServiceDefinition {
  if (!cached) {
    const protoRoot = fileURLToPath(new URL('../proto/', import.meta.url));
    const pkg = loadSync('istio/v1/auth/ca.proto', {
      includeDirs: [protoRoot],
      keepCase: false,
      longs: Number,
      enums: String,
      defaults: true,
      oneofs: true,
    });
    cached = pkg['istio.v1.auth.IstioCertificateService'] as ServiceDefinition;
  }
  return cached;
}

/** A flat string map as a `google.protobuf.Struct`. */
export function toStruct(map: Record<string, string>): ProtoStruct {
  const fields: Record<string, ProtoValue> = {};
  for (const [k, v] of Object.entries(map)) fields[k] = { stringValue: v };
  return { fields };
}

/** The string value of `key` in a decoded Struct, if it is a string. */
export function structString(
  struct: ProtoStruct | null | undefined,
  key: string,
): string | undefined {
  const value = struct?.fields?.[key];
  return typeof value?.stringValue === 'string' ? value.stringValue : undefined;
}
