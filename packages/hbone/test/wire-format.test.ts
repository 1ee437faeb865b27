import { readFileSync } from 'node:fs';
import { parseForwarded } from '@mesh/metrics';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  formatAuthority,
  formatForwarded,
  HBONE_ERROR_CODES,
  HboneError,
  newTraceparent,
  parseAuthority,
  toHboneError,
  tryParseAuthority,
} from '../src/index.js';

describe('authority parsing', () => {
  it.each([
    ['10.0.0.1:8080', { host: '10.0.0.1', port: 8080, family: 4 }],
    ['[fd00::1]:80', { host: 'fd00::1', port: 80, family: 6 }],
    ['[::ffff:10.0.0.1]:443', { host: '::ffff:10.0.0.1', port: 443, family: 6 }],
    [
      'reviews.bookinfo.svc.cluster.local:9080',
      { host: 'reviews.bookinfo.svc.cluster.local', port: 9080, family: 0 },
    ],
    ['Echo.Remote:1', { host: 'echo.remote', port: 1, family: 0 }],
    ['localhost:65535', { host: 'localhost', port: 65535, family: 0 }],
  ])('parses %s', (text, expected) => {
    expect(parseAuthority(text)).toEqual(expected);
  });

  it.each([
    '',
    ':80',
    '10.0.0.1',
    '10.0.0.1:',
    '10.0.0.1:0',
    '10.0.0.1:65536',
    '::1:80',
    '[::1]',
    '[::1]80',
    '[nope]:80',
    'a..b:80',
    'a b:80',
    '999.1.1.1:80',
    'host:+80',
    'host:0x50',
  ])('rejects %j with ERR_HBONE_AUTHORITY_INVALID', (text) => {
    expect(tryParseAuthority(text)).toBeUndefined();
    expect(() => parseAuthority(text)).toThrowError(
      expect.objectContaining({ code: 'ERR_HBONE_AUTHORITY_INVALID' }),
    );
  });

  it('round-trips every IPv4/IPv6 address and port through format and parse', () => {
    fc.assert(
      fc.property(
        fc.oneof(fc.ipV4(), fc.ipV6()),
        fc.integer({ min: 1, max: 65535 }),
        (ip, port) => {
          const parsed = parseAuthority(formatAuthority(ip, port));
          expect(parsed.port).toBe(port);
          expect(parsed.family).toBe(ip.includes(':') ? 6 : 4);
        },
      ),
    );
  });

  it('never throws anything but HboneError on arbitrary input', () => {
    fc.assert(
      fc.property(fc.string({ maxLength: 300 }), (s) => {
        try {
          parseAuthority(s);
        } catch (e) {
          expect(e).toBeInstanceOf(HboneError);
        }
      }),
    );
  });
});

describe('HBONE headers', () => {
  it('renders forwarded as ztunnel does: quoted ip:port plus optional host', () => {
    expect(formatForwarded({ address: '10.0.0.7', port: 41234 })).toBe('for="10.0.0.7:41234"');
    expect(formatForwarded({ address: 'fd00::7', port: 1 }, 'svc.ns.svc.cluster.local')).toBe(
      'for="[fd00::7]:1";host=svc.ns.svc.cluster.local',
    );
    // The receiving side (ztunnel, via @mesh/metrics) reads back exactly what was sent.
    expect(
      parseForwarded(formatForwarded({ address: 'fd00::7', port: 1 }, 'svc.ns.svc.cluster.local')),
    ).toEqual([{ for: '[fd00::7]:1', host: 'svc.ns.svc.cluster.local' }]);
  });

  it('generates W3C traceparents with random ids and flags 00', () => {
    const a = newTraceparent();
    const b = newTraceparent();
    expect(a).toMatch(/^00-[0-9a-f]{32}-[0-9a-f]{16}-00$/);
    expect(a).not.toBe(b);
  });
});

describe('errors', () => {
  it.each([
    [
      {
        code: 'ERR_HTTP2_STREAM_ERROR',
        message: 'Stream closed with error code NGHTTP2_REFUSED_STREAM',
      },
      'ERR_HBONE_REFUSED_STREAM',
      7,
    ],
    [
      {
        code: 'ERR_HTTP2_STREAM_ERROR',
        message: 'Stream closed with error code NGHTTP2_CONNECT_ERROR',
      },
      'ERR_HBONE_STREAM_RESET',
      10,
    ],
    [
      {
        code: 'ERR_HTTP2_SESSION_ERROR',
        message: 'Session closed with error code NGHTTP2_PROTOCOL_ERROR',
      },
      'ERR_HBONE_CONNECTION_CLOSED',
      1,
    ],
    [
      {
        code: 'ERR_HTTP2_GOAWAY_SESSION',
        message: 'New streams cannot be created after receiving a GOAWAY',
      },
      'ERR_HBONE_CONNECTION_CLOSED',
      undefined,
    ],
    [{ code: 'ERR_HTTP2_INVALID_HEADER_VALUE', message: 'x' }, 'ERR_HBONE_PROTOCOL', undefined],
    [{ code: 'CERT_HAS_EXPIRED', message: 'certificate has expired' }, 'ERR_HBONE_TLS', undefined],
    [
      { code: 'ERR_SSL_TLSV13_ALERT_CERTIFICATE_REQUIRED', message: 'alert' },
      'ERR_HBONE_TLS',
      undefined,
    ],
    [{ code: 'ECONNREFUSED', message: 'connect ECONNREFUSED' }, 'ERR_HBONE_DIAL_FAILED', undefined],
    [{ code: 'ETIMEDOUT', message: 'connect ETIMEDOUT' }, 'ERR_HBONE_DIAL_TIMEOUT', undefined],
  ])('maps %o to %s', (raw, code, rstCode) => {
    const mapped = toHboneError(Object.assign(new Error(raw.message), { code: raw.code }));
    expect(mapped.code).toBe(code);
    expect(mapped.rstCode).toBe(rstCode);
    expect(mapped.cause).toBeInstanceOf(Error);
  });

  it('recognises HboneErrors across package copies by brand', () => {
    const foreign = Object.assign(new Error('x'), { code: 'ERR_HBONE_TLS' });
    Object.defineProperty(foreign, Symbol.for('@mesh/hbone.HboneError'), { value: true });
    expect(foreign).toBeInstanceOf(HboneError);
    expect(new Error('y')).not.toBeInstanceOf(HboneError);
  });

  it('documents every error code in the README, and nothing else', () => {
    const readme = readFileSync(new URL('../README.md', import.meta.url), 'utf8');
    const documented = new Set(readme.match(/ERR_HBONE_[A-Z_]+/g));
    expect([...documented].sort()).toEqual(Object.keys(HBONE_ERROR_CODES).sort());
  });
});
