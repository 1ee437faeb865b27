import { afterEach, describe, expect, it, vi } from 'vitest';

// Forces the loader down the path a non-Linux platform takes (the stub reports
// `supported: false`): the module must load, say why, and every call must throw a typed error.
describe('without the native addon (forced unsupported path)', () => {
  afterEach(() => {
    vi.unstubAllEnvs();
    vi.resetModules();
  });

  async function load() {
    vi.stubEnv('MESH_REDIRECT_FORCE_UNSUPPORTED', '1');
    vi.resetModules();
    return import('../src/index.js');
  }

  it('loads, reports isSupported = false and the reason', async () => {
    const m = await load();
    expect(m.isSupported).toBe(false);
    expect(m.loadError?.message).toMatch(/MESH_REDIRECT_FORCE_UNSUPPORTED/);
  });

  it('throws ERR_REDIRECT_NOT_SUPPORTED from every socket call', async () => {
    const m = await load();
    const calls: Array<[string, () => unknown]> = [
      ['createListenSocket', () => m.createListenSocket({ host: '127.0.0.1' })],
      ['createOutboundSocket', () => m.createOutboundSocket({})],
      ['connectSocket', () => m.connectSocket({ host: '127.0.0.1', port: 1 })],
      ['originalDestination', () => m.originalDestination(3)],
      ['setMark', () => m.setMark(3, 1)],
      ['getMark', () => m.getMark(3)],
      ['netnsId', () => m.netnsId()],
    ];
    for (const [name, call] of calls) {
      let caught: unknown;
      try {
        call();
      } catch (err) {
        caught = err;
      }
      expect(caught, name).toBeInstanceOf(m.RedirectError);
      expect(caught, name).toMatchObject({ code: 'ERR_REDIRECT_NOT_SUPPORTED' });
      expect((caught as Error).message, name).toMatch(/is not supported: the addon was disabled/);
    }
    await expect(m.createTransparentServer({ host: '127.0.0.1' })).rejects.toMatchObject({
      code: 'ERR_REDIRECT_NOT_SUPPORTED',
    });
  });

  it('answers the capability probe with everything false instead of throwing', async () => {
    const m = await load();
    const caps = m.probeCapabilities();
    expect(caps).toMatchObject({
      supported: false,
      transparent: false,
      mark: false,
      setns: false,
      originalDestination: false,
    });
    expect(caps.missing[0]).toMatch(/native addon unavailable/);
  });

  it('still generates rule sets, which need no addon', async () => {
    const m = await load();
    expect(m.inpodIptablesRules().ipv4).toContain('ISTIO_OUTPUT');
  });

  it('the test kit says why namespaced tests cannot run', async () => {
    await load();
    const kit = await import('../src/testing/index.js');
    expect(kit.namespaceSupport()).toEqual({
      ok: false,
      reason: expect.stringMatching(/addon is unavailable/),
    });
  });
});
