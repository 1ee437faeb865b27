import { randomBytes } from 'node:crypto';
import { formatAuthority } from './authority.js';

/** A fresh W3C `traceparent` as ztunnel sends per tunnel: random ids, flags `00` (not sampled). */
export function newTraceparent(): string {
  const bytes = randomBytes(24);
  return `00-${bytes.toString('hex', 0, 16)}-${bytes.toString('hex', 16, 24)}-00`;
}

/**
 * The `forwarded` header ztunnel sends: `for="<ip:port>"`, plus `;host=<fqdn>` when the
 * connection was addressed to a service.
 */
export function formatForwarded(client: { address: string; port: number }, host?: string): string {
  const value = `for="${formatAuthority(client.address, client.port)}"`;
  return host ? `${value};host=${host}` : value;
}
