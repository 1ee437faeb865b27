import { SpiffeId } from '@mesh/spiffe';
import { afterEach, describe, expect, it } from 'vitest';
import { HboneClient } from '../src/index.js';
import { CLIENT_ID, type Env, eventually, makeEnv, SERVER_ID } from './helpers/harness.js';
import { FRAME, type Frame, RawH2, startFakeH2Server } from './helpers/raw-h2.js';

const MiB = 1024 * 1024;

function settingsOf(f: Frame): Map<number, number> {
  const out = new Map<number, number>();
  for (let i = 0; i + 6 <= f.payload.length; i += 6) {
    out.set(f.payload.readUInt16BE(i), f.payload.readUInt32BE(i + 2));
  }
  return out;
}

describe('HTTP/2 and TLS settings on the wire', () => {
  let env: Env | undefined;
  afterEach(async () => {
    await env?.close();
    env = undefined;
  });

  it('the server advertises ztunnel settings and opens a 16 MiB connection window', async () => {
    env = await makeEnv(() => ({ type: 'refuse', status: 503 }));
    const raw = await RawH2.connect(env.port, env.clientCert);
    await eventually(
      () => raw.count(FRAME.WINDOW_UPDATE, (f) => f.streamId === 0) > 0,
      'WINDOW_UPDATE',
    );
    const settings = settingsOf(
      raw.frames.find((f) => f.type === FRAME.SETTINGS && !(f.flags & 1))!,
    );
    expect(settings.get(0x3)).toBe(200); // MAX_CONCURRENT_STREAMS
    expect(settings.get(0x4)).toBe(4 * MiB); // INITIAL_WINDOW_SIZE
    expect(settings.get(0x5)).toBe(MiB); // MAX_FRAME_SIZE
    expect(settings.get(0x6)).toBe(64 * 1024); // MAX_HEADER_LIST_SIZE
    expect(settings.get(0x8) ?? 0).toBe(0); // no extended CONNECT
    const increment = raw.frames
      .filter((f) => f.type === FRAME.WINDOW_UPDATE && f.streamId === 0)
      .reduce((a, f) => a + f.payload.readUInt32BE(0), 0);
    expect(65535 + increment).toBe(16 * MiB);
    raw.destroy();
  });

  it('the client sends no SNI, offers only h2, disables push and opens its windows like ztunnel', async () => {
    env = await makeEnv(() => ({ type: 'refuse', status: 503 }));
    const fake = await startFakeH2Server(env.serverCert);
    const seen = fake.connections;
    const client = new HboneClient({ certificates: env.clientCert });
    try {
      const pending = client
        .connect({
          authority: '10.0.0.1:80',
          via: { host: '127.0.0.1', port: fake.port },
          sourceIdentity: SpiffeId.parse(CLIENT_ID),
          expectedIdentities: [SERVER_ID],
        })
        .catch(() => undefined);
      await eventually(
        () => seen.length === 1 && seen[0]!.frames.some((f) => f.type === FRAME.HEADERS),
        'CONNECT sent',
      );
      const { servername, alpn, frames } = seen[0]!;
      expect(servername).toBeFalsy();
      expect(alpn).toBe('h2');
      const settings = settingsOf(frames.find((f) => f.type === FRAME.SETTINGS && !(f.flags & 1))!);
      expect(settings.get(0x2)).toBe(0); // ENABLE_PUSH off
      expect(settings.get(0x4)).toBe(4 * MiB);
      expect(settings.get(0x5)).toBe(MiB);
      expect(settings.get(0x6)).toBe(16 * 1024);
      const increment = frames
        .filter((f) => f.type === FRAME.WINDOW_UPDATE && f.streamId === 0)
        .reduce((a, f) => a + f.payload.readUInt32BE(0), 0);
      expect(65535 + increment).toBe(16 * MiB);
      const headers = frames.find((f) => f.type === FRAME.HEADERS)!;
      expect(headers.flags & 0x1).toBe(0); // CONNECT keeps the stream open (no END_STREAM)
      client.destroy();
      await pending;
    } finally {
      client.destroy();
      await fake.close();
    }
  });
});
