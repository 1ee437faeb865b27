import { createHash } from 'node:crypto';
import { Duplex } from 'node:stream';
import { afterEach, describe, expect, it } from 'vitest';
import type { ServerTunnel } from '../src/index.js';
import { type Env, eventually, makeEnv, randomBytes, sha256 } from './helpers/harness.js';

const MiB = 1024 * 1024;
const SINK_HWM = 64 * 1024;

/** An upstream that stops reading while `held`: every write callback waits for release. */
class SlowSink extends Duplex {
  consumed = 0;
  held = true;
  readonly hash = createHash('sha256');
  #waiting: (() => void)[] = [];
  constructor() {
    super({ highWaterMark: SINK_HWM, allowHalfOpen: true });
  }
  override _read(): void {}
  override _write(chunk: Buffer, _enc: BufferEncoding, cb: (err?: Error) => void): void {
    const take = () => {
      this.consumed += chunk.length;
      this.hash.update(chunk);
      cb();
    };
    if (this.held) this.#waiting.push(take);
    else take();
  }
  override _final(cb: () => void): void {
    this.push(null);
    cb();
  }
  release(): void {
    this.held = false;
    for (const w of this.#waiting.splice(0)) w();
  }
}

describe('HBONE backpressure', () => {
  let env: Env | undefined;
  afterEach(async () => {
    await env?.close();
    env = undefined;
  });

  it('a slow reader never makes the server buffer more than the windows allow', {
    timeout: 60_000,
  }, async () => {
    const sink = new SlowSink();
    let tunnel: ServerTunnel | undefined;
    env = await makeEnv(() => ({
      type: 'dial',
      host: 'sink',
      port: 1,
      connect: async () => sink,
    }));
    env.server.on('tunnel-open', (t) => {
      tunnel = t;
    });
    const client = await env.client.connect(env.connectOpts('10.0.0.1:80'));
    const payload = randomBytes(32 * MiB);
    let handedOver = 0; // bytes whose write callback fired on the client
    let offset = 0;
    const chunk = 256 * 1024;
    const pump = () => {
      while (offset < payload.length) {
        const piece = payload.subarray(offset, offset + chunk);
        offset += piece.length;
        const ok = client.stream.write(piece, () => {
          handedOver += piece.length;
        });
        if (!ok) return void client.stream.once('drain', pump);
      }
      client.stream.end();
    };
    pump();

    // Wait until the sender is stuck: nothing more is handed over for a while.
    let last = -1;
    await eventually(
      () => {
        const stuck = handedOver === last && handedOver > 0;
        last = handedOver;
        return stuck;
      },
      'sender blocked',
      30_000,
    );
    await new Promise((r) => setTimeout(r, 300));
    expect(handedOver).toBe(last);
    expect(tunnel).toBeDefined();
    const serverBuffered = tunnel!.bytesReceived - sink.consumed;
    const inFlight = handedOver - sink.consumed;
    // Server side: what the splice read but the upstream did not take is one sink buffer
    // plus at most one frame.
    expect(serverBuffered).toBeLessThanOrEqual(SINK_HWM + MiB);
    // End to end: the client can hand over no more than the 4 MiB stream window (plus
    // slack for one local buffer) while the upstream reads nothing.
    expect(inFlight).toBeLessThanOrEqual(4 * MiB + 512 * 1024);
    expect(handedOver).toBeLessThan(payload.length);

    sink.release();
    await eventually(() => sink.consumed === payload.length, 'all bytes delivered', 30_000);
    expect(sink.hash.digest('hex')).toBe(sha256(payload));
  });
});
