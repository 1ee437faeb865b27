import type { Settings } from 'node:http2';
import { HboneError } from './errors.js';

const MiB = 1024 * 1024;

/** HTTP/2 and keepalive tuning; every field defaults to ztunnel's value. */
export interface Http2Tuning {
  /** SETTINGS_INITIAL_WINDOW_SIZE, the per-stream receive window. Default 4 MiB. */
  streamWindowSize?: number;
  /** Connection-level receive window (via `setLocalWindowSize`). Default 16 MiB. */
  connectionWindowSize?: number;
  /** SETTINGS_MAX_FRAME_SIZE advertised. Default 1 MiB. */
  maxFrameSize?: number;
  /** SETTINGS_MAX_HEADER_LIST_SIZE advertised. Default 64 KiB (server), 16 KiB (client). */
  maxHeaderListSize?: number;
  /** PING interval in ms. Default 10 000. */
  pingIntervalMs?: number;
  /** Drop the connection when a PING is unanswered this long (ms). Default 20 000. */
  pingTimeoutMs?: number;
  /**
   * nghttp2 session memory cap in MB (header tables, queued outbound data). Default: the
   * connection window plus room for every stream's queued writes, at least 64.
   */
  maxSessionMemory?: number;
}

export interface ResolvedTuning {
  streamWindowSize: number;
  connectionWindowSize: number;
  maxFrameSize: number;
  maxHeaderListSize: number;
  pingIntervalMs: number;
  pingTimeoutMs: number;
  maxSessionMemory: number;
}

/** Per-stream buffering on our side of a tunnel (readable/writable highWaterMark). */
export const TUNNEL_HIGH_WATER_MARK = 256 * 1024;

function check(name: string, value: number, min: number, max: number): number {
  if (!Number.isInteger(value) || value < min || value > max) {
    throw new HboneError(
      'ERR_HBONE_OPTIONS_INVALID',
      `${name} must be an integer in [${min}, ${max}], got ${value}`,
    );
  }
  return value;
}

export function resolveTuning(
  t: Http2Tuning | undefined,
  defaults: { maxHeaderListSize: number; maxStreams: number },
): ResolvedTuning {
  const streamWindowSize = check(
    'streamWindowSize',
    t?.streamWindowSize ?? 4 * MiB,
    65535,
    2 ** 31 - 1,
  );
  const connectionWindowSize = check(
    'connectionWindowSize',
    t?.connectionWindowSize ?? 16 * MiB,
    65535,
    2 ** 31 - 1,
  );
  const budget = Math.ceil(
    (connectionWindowSize + defaults.maxStreams * TUNNEL_HIGH_WATER_MARK) / MiB,
  );
  return {
    streamWindowSize,
    connectionWindowSize,
    maxFrameSize: check('maxFrameSize', t?.maxFrameSize ?? MiB, 16384, 16777215),
    maxHeaderListSize: check(
      'maxHeaderListSize',
      t?.maxHeaderListSize ?? defaults.maxHeaderListSize,
      1024,
      2 ** 31 - 1,
    ),
    pingIntervalMs: check('pingIntervalMs', t?.pingIntervalMs ?? 10_000, 0, 2 ** 31 - 1),
    pingTimeoutMs: check('pingTimeoutMs', t?.pingTimeoutMs ?? 20_000, 1, 2 ** 31 - 1),
    maxSessionMemory: check(
      'maxSessionMemory',
      t?.maxSessionMemory ?? Math.max(64, budget),
      1,
      1 << 20,
    ),
  };
}

export function localSettings(t: ResolvedTuning, extra: Settings): Settings {
  return {
    enablePush: false,
    initialWindowSize: t.streamWindowSize,
    maxFrameSize: t.maxFrameSize,
    maxHeaderListSize: t.maxHeaderListSize,
    ...extra,
  };
}
