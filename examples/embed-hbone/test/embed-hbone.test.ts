import { connect } from 'node:net';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { runExample, startExample } from '../../run-example.js';

const dir = fileURLToPath(new URL('..', import.meta.url));

describe('embed-hbone', () => {
  it('carries two HTTP requests through HBONE tunnels on one pooled connection', async () => {
    const { code, stdout, stderr } = await runExample(dir);
    expect(stderr).toBe('');
    expect(code).toBe(0);
    expect(stdout).toContain(
      'client: GET /request-1 -> HTTP 200 hello from spiffe://cluster.local/ns/shop/sa/api (GET /request-1)',
    );
    expect(stdout).toContain(
      'client: GET /request-2 -> HTTP 200 hello from spiffe://cluster.local/ns/shop/sa/api (GET /request-2)',
    );
    // The destination saw the proxy's mTLS identity and the real client in `forwarded`.
    const seen = [
      ...stdout.matchAll(
        /destination: CONNECT 127\.0\.0\.1:\d+ from spiffe:\/\/cluster\.local\/ns\/edge\/sa\/edge-proxy \(forwarded: for="(127\.0\.0\.1:\d+)"\)/g,
      ),
    ].map((m) => m[1]);
    const tunnelled = [...stdout.matchAll(/proxy: (127\.0\.0\.1:\d+) tunnelled to/g)].map(
      (m) => m[1],
    );
    expect(seen).toHaveLength(2);
    expect(seen).toEqual(tunnelled);
    expect(stdout).toContain('proxy: HBONE dials 1, connections open 1');
  });

  it('reports the 401 of a destination that refuses the proxy identity', async () => {
    const { code, stdout } = await runExample(dir, ['--as', 'intruder', '--requests', '1']);
    expect(code).toBe(0);
    expect(stdout).toContain('destination: refused spiffe://cluster.local/ns/edge/sa/intruder');
    expect(stdout).toMatch(/proxy: 127\.0\.0\.1:\d+ refused: ERR_HBONE_HTTP_STATUS: .*401/);
    expect(stdout).toMatch(/client: GET \/request-1 -> failed: /);
  });

  it('keeps serving with --keep and stops cleanly on SIGINT', async () => {
    const run = startExample(dir, ['--keep']);
    try {
      const [, port] = await run.waitFor(/try: curl http:\/\/127\.0\.0\.1:(\d+)\//);
      const socket = connect(Number(port), '127.0.0.1');
      const sent = 'GET /raw HTTP/1.0\r\n\r\n';
      socket.end(sent);
      let reply = '';
      for await (const chunk of socket) reply += chunk;
      expect(reply).toMatch(/^HTTP\/1\.1 200 OK\r\n/);
      expect(reply).toContain('hello from spiffe://cluster.local/ns/shop/sa/api (GET /raw)');
      const closed = await run.waitFor(
        /proxy: 127\.0\.0\.1:\d+ closed, (\d+) bytes up, (\d+) bytes down/,
      );
      expect(Number(closed[1])).toBe(sent.length);
      expect(Number(closed[2])).toBe(Buffer.byteLength(reply));
      run.child.kill('SIGINT');
      expect((await run.exited).code).toBe(0);
    } finally {
      run.child.kill('SIGKILL');
    }
  });
});
