import {
  type CertificateIssuer,
  type FetchErrorEvent,
  type IssueOptions,
  LocalCa,
  type RotatedEvent,
  SecretManager,
  SpiffeError,
  SpiffeId,
  type WorkloadCertificate,
} from '@mesh/spiffe';
import { afterEach, describe, expect, it } from 'vitest';

const ca = LocalCa.create({ maxTtlSeconds: 86_400 });
const id = (sa: string) => SpiffeId.parse(`spiffe://cluster.local/ns/default/sa/${sa}`);
const DEMO = id('demo');

/** An issuer the test controls: records calls, can hold them, fail them, or delay them. */
class ScriptedIssuer implements CertificateIssuer {
  calls: { identity: string; signal: AbortSignal | undefined }[] = [];
  inFlight = 0;
  maxInFlight = 0;
  held: (() => void)[] = [];
  hold = false;
  failures = 0;
  error: Error = new SpiffeError('ERR_SPIFFE_CA_UNAVAILABLE', 'CA down (scripted)');
  delayMs = 0;
  ttlSeconds: number | undefined;

  async issue(identity: SpiffeId, options: IssueOptions = {}): Promise<WorkloadCertificate> {
    this.calls.push({ identity: identity.toString(), signal: options.signal });
    this.inFlight++;
    this.maxInFlight = Math.max(this.maxInFlight, this.inFlight);
    try {
      if (this.hold) await new Promise<void>((r) => this.held.push(r));
      if (this.delayMs) await new Promise((r) => setTimeout(r, this.delayMs));
      options.signal?.throwIfAborted();
      if (this.failures > 0) {
        this.failures--;
        throw this.error;
      }
      return ca.issueSync(identity, { ttlSeconds: this.ttlSeconds ?? options.ttlSeconds });
    } finally {
      this.inFlight--;
    }
  }

  release(): void {
    this.hold = false;
    for (const r of this.held.splice(0)) r();
  }
}

const managers: SecretManager[] = [];
function manager(
  issuer: CertificateIssuer,
  extra: Partial<ConstructorParameters<typeof SecretManager>[0]> = {},
) {
  const m = new SecretManager({ issuer, ...extra });
  managers.push(m);
  return m;
}
afterEach(async () => {
  await Promise.all(managers.splice(0).map((m) => m.close()));
});

const tick = () => new Promise((r) => setImmediate(r));
function nextEvent<T>(m: SecretManager, name: 'rotated' | 'error'): Promise<T> {
  return new Promise((resolve) => m.once(name, resolve as (e: unknown) => void));
}

describe('SecretManager fetching', () => {
  it('fetches on demand and returns the same object until it rotates', async () => {
    const issuer = new ScriptedIssuer();
    const m = manager(issuer, { ttlSeconds: 3600 });
    const first = await m.getCertificate(DEMO);
    expect(first.identity.equals(DEMO)).toBe(true);
    expect(await m.getCertificate(DEMO)).toBe(first);
    expect(issuer.calls).toHaveLength(1);
  });

  it('coalesces concurrent requests for one identity into one CSR', async () => {
    const issuer = new ScriptedIssuer();
    issuer.hold = true;
    const m = manager(issuer);
    const waiting = Array.from({ length: 20 }, () => m.getCertificate(DEMO));
    m.prefetch(DEMO);
    await tick();
    issuer.release();
    const certs = await Promise.all(waiting);
    expect(new Set(certs).size).toBe(1);
    expect(issuer.calls).toHaveLength(1);
  });

  it('keeps at most 8 CSRs in flight', async () => {
    const issuer = new ScriptedIssuer();
    issuer.hold = true;
    const m = manager(issuer);
    const all = Array.from({ length: 20 }, (_, i) => m.getCertificate(id(`w${i}`)));
    await tick();
    expect(issuer.inFlight).toBe(8);
    while (issuer.calls.length < 20 || issuer.held.length > 0) {
      issuer.held.shift()?.();
      await tick();
    }
    const certs = await Promise.all(all);
    expect(certs.map((c) => c.identity.toString())).toEqual(
      Array.from({ length: 20 }, (_, i) => id(`w${i}`).toString()),
    );
    expect(issuer.maxInFlight).toBe(8);
  });

  it('serves a waiting connection before prefetch before scheduled refresh, and bumps priority', async () => {
    const issuer = new ScriptedIssuer();
    issuer.hold = true;
    const m = manager(issuer, { maxConcurrentFetches: 1 });
    const blocker = m.getCertificate(id('blocker'));
    await tick();
    m.prefetch(id('background'), 'background');
    m.prefetch(id('warm-1'), 'warmup');
    m.prefetch(id('warm-2'), 'warmup');
    const realtime = m.getCertificate(id('realtime'));
    const bumped = m.getCertificate(id('warm-2')); // a connection now needs warm-2
    while (issuer.calls.length < 5 || issuer.held.length > 0) {
      issuer.held.shift()?.();
      await tick();
    }
    await Promise.all([blocker, realtime, bumped]);
    // warm-2 was queued before realtime, so among the two realtime requests it goes first.
    expect(issuer.calls.map((c) => c.identity.split('/').at(-1))).toEqual([
      'blocker',
      'warm-2',
      'realtime',
      'warm-1',
      'background',
    ]);
  });
});

describe('SecretManager rotation', () => {
  it('rotates at half the lifetime, fires rotated, and old certificates stay valid until expiry', async () => {
    const issuer = new ScriptedIssuer();
    const m = manager(issuer, { ttlSeconds: 2 });
    const rotations: RotatedEvent[] = [];
    m.on('rotated', (e) => rotations.push(e));
    const first = await m.getCertificate(DEMO);
    expect(rotations).toHaveLength(1);
    expect(rotations[0]!.previous).toBeUndefined();
    const rotated = await nextEvent<RotatedEvent>(m, 'rotated');
    const rotatedAt = Date.now();
    expect(rotated.previous).toBe(first);
    expect(rotated.certificate).not.toBe(first);
    expect(rotated.certificate.serialNumber).not.toBe(first.serialNumber);
    // Refresh happened around notBefore + 50 %, not at expiry.
    expect(rotatedAt).toBeGreaterThanOrEqual(first.notBefore.getTime() + 900);
    expect(rotatedAt).toBeLessThan(first.notAfter.getTime());
    expect(await m.getCertificate(DEMO)).toBe(rotated.certificate);
    // The replaced certificate is still within its validity window.
    expect(first.notAfter.getTime()).toBeGreaterThan(Date.now());
    expect(Object.isFrozen(first)).toBe(true);
  });

  it('answers from the held certificate while a refresh is in flight', async () => {
    const issuer = new ScriptedIssuer();
    const m = manager(issuer, { ttlSeconds: 2 });
    const first = await m.getCertificate(DEMO);
    issuer.hold = true;
    // Wait until the background refresh has started and is held.
    while (issuer.calls.length < 2) await new Promise((r) => setTimeout(r, 20));
    const during = await Promise.race([
      m.getCertificate(DEMO),
      new Promise((r) => setTimeout(() => r('waited'), 50)),
    ]);
    expect(during).toBe(first);
    issuer.release();
    const next = await nextEvent<RotatedEvent>(m, 'rotated');
    expect(next.previous).toBe(first);
  });
});

describe('SecretManager failure handling', () => {
  it('rejects waiters with the fetch error and reports Unavailable when it holds nothing', async () => {
    const issuer = new ScriptedIssuer();
    issuer.failures = 1;
    const m = manager(issuer, { backoff: { initialMs: 60_000 } });
    const err = await m.getCertificate(DEMO).catch((e: unknown) => e);
    expect((err as SpiffeError).code).toBe('ERR_SPIFFE_CA_UNAVAILABLE');
    expect(m.status(DEMO)?.state).toBe('Unavailable: CA down (scripted)');
    expect(m.status(DEMO)?.nextFetch).toBeDefined();
    // A new connection triggers a new attempt right away rather than waiting out the backoff.
    const cert = await m.getCertificate(DEMO);
    expect(cert.identity.equals(DEMO)).toBe(true);
    expect(m.status(DEMO)?.state).toBe('Available');
  });

  it('keeps serving a valid certificate, backs off with jitter, and resets backoff on success', async () => {
    const issuer = new ScriptedIssuer();
    const m = manager(issuer, {
      ttlSeconds: 30,
      refreshFraction: 0.01,
      backoff: { initialMs: 100 },
    });
    const first = await m.getCertificate(DEMO);
    issuer.failures = 3;
    const errors: FetchErrorEvent[] = [];
    m.on('error', (e) => errors.push(e));
    const recovered = await nextEvent<RotatedEvent>(m, 'rotated');
    expect(errors.map((e) => e.serving)).toEqual([true, true, true]);
    const delays = errors.map((e) => e.retryInMs);
    expect(delays[0]).toBeGreaterThanOrEqual(80);
    expect(delays[0]).toBeLessThanOrEqual(120);
    expect(delays[1]).toBeGreaterThanOrEqual(160);
    expect(delays[1]).toBeLessThanOrEqual(240);
    expect(delays[2]).toBeGreaterThanOrEqual(320);
    expect(delays[2]).toBeLessThanOrEqual(480);
    expect(recovered.previous).toBe(first);
    // Backoff starts over after the success.
    issuer.failures = 1;
    const again = await nextEvent<FetchErrorEvent>(m, 'error');
    expect(again.retryInMs).toBeLessThanOrEqual(120);
  });

  it('uses istiod-like defaults: first retry 500 ms ±20 %, capped at 150 s', async () => {
    const issuer = new ScriptedIssuer();
    issuer.failures = 100;
    const m = manager(issuer);
    const errors: FetchErrorEvent[] = [];
    m.on('error', (e) => errors.push(e));
    await m.getCertificate(DEMO).catch(() => undefined);
    expect(errors[0]!.retryInMs).toBeGreaterThanOrEqual(400);
    expect(errors[0]!.retryInMs).toBeLessThanOrEqual(600);
    for (let i = 0; i < 12; i++) await m.getCertificate(DEMO).catch(() => undefined);
    expect(errors.at(-1)!.retryInMs).toBeLessThanOrEqual(150_000 * 1.2);
    expect(errors.at(-1)!.retryInMs).toBeGreaterThanOrEqual(150_000 * 0.8);
  });

  it('retries no later than expiry when the backoff is longer', async () => {
    const issuer = new ScriptedIssuer();
    const m = manager(issuer, { ttlSeconds: 4, backoff: { initialMs: 60_000 } });
    const cert = await m.getCertificate(DEMO);
    issuer.failures = 1;
    const err = await nextEvent<FetchErrorEvent>(m, 'error');
    expect(err.serving).toBe(true);
    expect(err.retryInMs).toBeLessThanOrEqual(cert.notAfter.getTime() - Date.now() + 50);
  });

  it('fails waiters with ERR_SPIFFE_CA_RESPONSE_INVALID when an issuer resolves with nothing', async () => {
    const m = manager({
      issue: () => Promise.resolve(undefined as unknown as WorkloadCertificate),
    });
    await expect(m.getCertificate(DEMO)).rejects.toMatchObject({
      code: 'ERR_SPIFFE_CA_RESPONSE_INVALID',
    });
  });

  it('does not crash when a fetch fails with a non-Error value', async () => {
    const m = manager({
      issue: () => Promise.reject('plain string'),
    });
    const err = await m.getCertificate(DEMO).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(Error);
    expect((err as Error).message).toBe('plain string');
  });
});

describe('SecretManager lifecycle', () => {
  it('forgets an identity: aborts its fetch and rejects its waiters', async () => {
    const issuer = new ScriptedIssuer();
    issuer.hold = true;
    const m = manager(issuer);
    const forgotten: SpiffeId[] = [];
    m.on('forgotten', (i) => forgotten.push(i));
    const waiting = m.getCertificate(DEMO).catch((e: unknown) => e);
    await tick();
    expect(m.forget(DEMO)).toBe(true);
    expect(((await waiting) as SpiffeError).code).toBe('ERR_SPIFFE_FORGOTTEN');
    expect(issuer.calls[0]!.signal?.aborted).toBe(true);
    expect(m.identities()).toEqual([]);
    expect(forgotten.map(String)).toEqual([DEMO.toString()]);
    expect(m.forget(DEMO)).toBe(false);
    issuer.release();
  });

  it('lets one caller abort without cancelling the shared fetch', async () => {
    const issuer = new ScriptedIssuer();
    issuer.hold = true;
    const m = manager(issuer);
    const ac = new AbortController();
    const aborted = m.getCertificate(DEMO, { signal: ac.signal }).catch((e: unknown) => e);
    const other = m.getCertificate(DEMO);
    await tick();
    ac.abort(new Error('client went away'));
    expect(((await aborted) as Error).message).toBe('client went away');
    issuer.release();
    expect((await other).identity.equals(DEMO)).toBe(true);
  });

  it('closes: rejects waiters and later calls with ERR_SPIFFE_CLOSED', async () => {
    const issuer = new ScriptedIssuer();
    issuer.hold = true;
    const m = manager(issuer);
    const waiting = m.getCertificate(DEMO).catch((e: unknown) => e);
    await tick();
    const closing = m.close();
    issuer.release();
    await closing;
    expect(((await waiting) as SpiffeError).code).toBe('ERR_SPIFFE_CLOSED');
    await expect(m.getCertificate(DEMO)).rejects.toMatchObject({ code: 'ERR_SPIFFE_CLOSED' });
    await m.close();
  });

  it('dumps state per identity like ztunnel config_dump', async () => {
    const issuer = new ScriptedIssuer();
    const m = manager(issuer, { ttlSeconds: 3600 });
    issuer.hold = true;
    const pending = m.getCertificate(id('pending'));
    await tick();
    expect(m.status(id('pending'))?.state).toBe('Initializing');
    issuer.release();
    const cert = await pending;
    const dump = m.dump();
    expect(dump).toHaveLength(1);
    const entry = dump[0]!;
    expect(entry.state).toBe('Available');
    expect(entry.serialNumber).toBe(cert.serialNumber);
    expect(entry.expirationTime).toBe(cert.notAfter.toISOString());
    expect(entry.certChain).toHaveLength(1);
    expect(Buffer.from(entry.certChain[0]!.pem, 'base64').toString()).toBe(cert.leaf);
    expect(entry.rootCerts[0]!.serialNumber).toBe(ca.trustBundle.roots[0]!.serialNumber);
    expect(JSON.parse(JSON.stringify(dump))).toEqual(dump);
  });
});
