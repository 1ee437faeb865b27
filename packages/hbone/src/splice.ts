import type { Duplex } from 'node:stream';
import { HboneError } from './errors.js';
import { TUNNEL_HIGH_WATER_MARK } from './settings.js';

const NGHTTP2_NO_ERROR = 0;
const NGHTTP2_CANCEL = 8;
const NGHTTP2_CONNECT_ERROR = 10;

export interface SpliceResult {
  /** Bytes read from `a` and written to `b`. */
  readonly bytesAtoB: number;
  /** Bytes read from `b` and written to `a`. */
  readonly bytesBtoA: number;
  /** The first abnormal termination, if any; clean EOFs in both directions leave it unset. */
  readonly error?: Error;
}

interface H2StreamLike extends Duplex {
  rstCode?: number;
  close(code?: number): void;
  session?: unknown;
}

function isH2Stream(s: Duplex): s is H2StreamLike {
  return 'rstCode' in s && typeof (s as H2StreamLike).close === 'function';
}

/** Reset the peer: RST_STREAM CONNECT_ERROR on HTTP/2 (RFC 9113 §8.5), TCP RST on sockets. */
function abort(s: Duplex): void {
  if (s.destroyed) return;
  if (isH2Stream(s)) {
    s.close(NGHTTP2_CONNECT_ERROR);
    s.destroy();
    return;
  }
  const reset = (s as { resetAndDestroy?: () => void }).resetAndDestroy;
  if (typeof reset === 'function' && (s as { _handle?: unknown })._handle) reset.call(s);
  else s.destroy();
}

/** Raise our buffering on streams we did not construct (Http2Streams), before data flows. */
export function raiseHighWaterMark(s: Duplex, hwm = TUNNEL_HIGH_WATER_MARK): void {
  const r = (s as { _readableState?: { highWaterMark: number } })._readableState;
  const w = (s as { _writableState?: { highWaterMark: number } })._writableState;
  if (r && r.highWaterMark < hwm) r.highWaterMark = hwm;
  if (w && w.highWaterMark < hwm) w.highWaterMark = hwm;
}

/**
 * Copies bytes both ways between two duplexes with one read->write hop per direction,
 * backpressure (pause on a full writer, resume on drain) and independent half-close: EOF
 * one way becomes `end()` (END_STREAM / TCP FIN) on the other side only. On an HTTP/2
 * side, RST_STREAM NO_ERROR or CANCEL counts as EOF (as ztunnel does); any other error
 * aborts the other side. Counting is a field increment per chunk, read on demand.
 */
export class Splice {
  bytesAtoB = 0;
  bytesBtoA = 0;
  readonly done: Promise<SpliceResult>;
  #error: Error | undefined;
  #open = 2;
  #corkedA = false;
  #corkedB = false;
  #resolve!: (r: SpliceResult) => void;

  constructor(
    readonly a: Duplex,
    readonly b: Duplex,
  ) {
    this.done = new Promise((resolve) => {
      this.#resolve = resolve;
    });
    // Chunks that arrive in one tick (e.g. every DATA frame decoded from one TLS read) leave
    // in one writev: cork on the first, uncork once the event loop has drained this I/O
    // phase (each DATA chunk is its own callback from C++, so nextTick would fire per chunk).
    // HTTP/2 sides are left alone: their session already batches frames per loop turn, and
    // corking them would cost the latency of an extra turn.
    const corkA = !isH2Stream(a);
    const corkB = !isH2Stream(b);
    const uncorkA = () => {
      this.#corkedA = false;
      a.uncork();
    };
    const uncorkB = () => {
      this.#corkedB = false;
      b.uncork();
    };
    a.on('data', (chunk: Buffer) => {
      this.bytesAtoB += chunk.length;
      if (corkB && !this.#corkedB) {
        this.#corkedB = true;
        b.cork();
        setImmediate(uncorkB);
      }
      if (!b.write(chunk)) a.pause();
    });
    b.on('data', (chunk: Buffer) => {
      this.bytesBtoA += chunk.length;
      if (corkA && !this.#corkedA) {
        this.#corkedA = true;
        a.cork();
        setImmediate(uncorkA);
      }
      if (!a.write(chunk)) b.pause();
    });
    a.on('drain', () => b.resume());
    b.on('drain', () => a.resume());
    a.on('end', () => this.#onEnd(a, b));
    b.on('end', () => this.#onEnd(b, a));
    this.#watch(a, b);
    this.#watch(b, a);
  }

  /** Abort both sides (e.g. a policy change revoked the tunnel). */
  destroy(error?: Error): void {
    if (error && !this.#error) this.#error = error;
    abort(this.a);
    abort(this.b);
  }

  #onEnd(src: Duplex, dst: Duplex): void {
    if (!isH2Stream(src)) {
      this.#eof(dst);
      return;
    }
    // Node ends an HTTP/2 stream's readable side for END_STREAM and for RST_STREAM alike;
    // the reset code is known once the current I/O phase is done.
    setImmediate(() => {
      const code = src.rstCode;
      if (code === undefined || code === NGHTTP2_NO_ERROR || code === NGHTTP2_CANCEL)
        this.#eof(dst);
    });
  }

  #eof(dst: Duplex): void {
    if (!dst.destroyed && !dst.writableEnded) dst.end();
  }

  #watch(s: Duplex, other: Duplex): void {
    let failed: Error | undefined;
    const session = isH2Stream(s) ? s.session : undefined;
    s.on('error', (err: Error) => {
      failed = err;
    });
    s.once('close', () => {
      // A session torn down under an unfinished stream is not a clean EOF, whatever its
      // rstCode: the peer vanished.
      const sessionGone =
        (failed as { code?: string } | undefined)?.code === 'ERR_HTTP2_STREAM_CANCEL' ||
        (session !== undefined &&
          (session as { destroyed?: boolean }).destroyed === true &&
          !(s.readableEnded && s.writableFinished));
      const graceful =
        isH2Stream(s) &&
        !sessionGone &&
        (s.rstCode === NGHTTP2_NO_ERROR || s.rstCode === NGHTTP2_CANCEL || s.rstCode === undefined);
      if (sessionGone || (failed && !graceful)) {
        this.#error ??=
          failed ??
          new HboneError(
            'ERR_HBONE_CONNECTION_CLOSED',
            'the HTTP/2 connection under the tunnel was lost',
          );
        abort(other);
      } else if (!s.readableEnded && !failed && !isH2Stream(s)) {
        // A plain duplex closed without EOF or error (destroyed locally): pass it on.
        abort(other);
      } else {
        // Clean EOF (including RST NO_ERROR/CANCEL): finish the other side's writes, then
        // release it; its remaining input has nowhere to go.
        // Never destroy a side with writes in flight: that would drop their tail.
        if (!other.destroyed) {
          if (!other.writableEnded) other.end();
          if (!other.readableEnded) {
            if (other.writableFinished) other.destroy();
            else other.once('finish', () => other.destroy());
          }
        }
      }
      if (--this.#open === 0) {
        this.#resolve({
          bytesAtoB: this.bytesAtoB,
          bytesBtoA: this.bytesBtoA,
          ...(this.#error ? { error: this.#error } : {}),
        });
      }
    });
  }
}
