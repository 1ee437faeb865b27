import { readdirSync } from 'node:fs';
import type net from 'node:net';
import { isSupported } from '../src/index.js';
import { namespaceSupport } from '../src/testing/index.js';

export const linux = process.platform === 'linux' && isSupported;
export const isRoot = process.getuid?.() === 0;
export const ns = namespaceSupport();

/** Prints why a privileged suite is skipped, once per file. */
export function reportSkip(suite: string, ok: boolean, reason: string): void {
  if (!ok) console.warn(`[redirect] skipping "${suite}": ${reason}`);
}

export function fdCount(): number {
  return readdirSync('/proc/self/fd').length;
}

/** Everything the peer sends until it ends the stream. */
export function readAll(socket: net.Socket, timeoutMs = 10_000): Promise<string> {
  return new Promise((resolve, reject) => {
    let data = '';
    const timer = setTimeout(() => {
      socket.destroy();
      reject(new Error(`no end of stream within ${timeoutMs} ms (got ${JSON.stringify(data)})`));
    }, timeoutMs);
    socket.setEncoding('utf8');
    socket.on('data', (d: string) => {
      data += d;
    });
    socket.once('error', (err) => {
      clearTimeout(timer);
      reject(err);
    });
    socket.once('end', () => {
      clearTimeout(timer);
      resolve(data);
    });
  });
}

export function closeServer(server: net.Server | undefined): Promise<void> {
  return new Promise((resolve) => {
    if (!server?.listening) {
      resolve();
      return;
    }
    server.close(() => resolve());
  });
}
