import diagnosticsChannel from 'node:diagnostics_channel';
import type { Reporter, TrafficLabels } from './labels.js';

/** `node:diagnostics_channel` name every access-log record is published on. */
export const ACCESS_LOG_CHANNEL = 'mesh:metrics:access-log';

export const accessLogChannel = diagnosticsChannel.channel(ACCESS_LOG_CHANNEL);

/** Levels as ztunnel logs them: opened at debug, complete at info (error when failed), early deny at warn. */
export type AccessLogLevel = 'debug' | 'info' | 'warn' | 'error';

export type AccessLogMessage = 'connection opened' | 'connection complete' | 'connection failed';

/**
 * ztunnel's access-log fields (tracing target `access`). Fields ztunnel would log as absent
 * (unknown values, identities on non-mTLS connections) are left out.
 */
export interface AccessLogFields {
  'src.addr': string;
  'src.workload'?: string;
  'src.namespace'?: string;
  /** Only on mTLS connections. */
  'src.identity'?: string;
  'src.cluster'?: string;
  /** Next hop, e.g. `podIP:15008`. */
  'dst.addr': string;
  /** The HBONE `:authority`. */
  'dst.hbone_addr'?: string;
  'dst.service'?: string;
  'dst.workload'?: string;
  'dst.namespace'?: string;
  /** Only on mTLS connections. */
  'dst.identity'?: string;
  'dst.cluster'?: string;
  direction: 'outbound' | 'inbound';
  /** From the reporter's point of view (ztunnel "unflips" Istio's source-side swap). */
  bytes_sent?: number;
  bytes_recv?: number;
  /** `<N>ms`. */
  duration?: string;
  error?: string;
}

/** One access-log line, ready for `logger[level](fields, msg)`. */
export interface AccessLogRecord {
  level: AccessLogLevel;
  msg: AccessLogMessage;
  fields: AccessLogFields;
  /** The connection's series labels; absent on early denies. */
  labels?: TrafficLabels;
}

export function direction(reporter: Reporter): 'outbound' | 'inbound' {
  return reporter === 'source' ? 'outbound' : 'inbound';
}

/** The message ztunnel's `Display` would give, for any thrown value. */
export function errorText(error: unknown): string {
  if (error instanceof Error) return error.message || error.name;
  return String(error);
}
