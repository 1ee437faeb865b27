import { writeFileSync } from 'node:fs';
import { namespaceSupport } from '@mesh/redirect/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ALLOW_CLIENT1, type NetnsMesh, SERVICE_VIP, startNetnsMesh } from '../demo/netns-mesh.js';
import { waitFor } from './helpers/mesh.js';

const support = namespaceSupport();
if (!support.ok) console.log(`skipping namespaced ztunnel tests: ${support.reason}`);

describe.runIf(support.ok)('ztunnel with real capture in network namespaces', () => {
  let mesh: NetnsMesh;
  beforeAll(async () => {
    mesh = await startNetnsMesh();
  }, 90_000);
  afterAll(async () => {
    await mesh?.close();
  }, 30_000);

  const curl = (from: string, url: string) =>
    mesh.pods[from]!.pod.exec(['curl', '-sS', '--max-time', '5', url]).then(
      (r) => ({ ok: true, out: r.stdout }),
      (err: Error) => ({ ok: false, out: err.message }),
    );

  it('captures a client connecting to the service VIP and balances it over both server pods', async () => {
    const seen = new Set<string>();
    for (let i = 0; i < 16 && seen.size < 2; i++) {
      const r = await curl('client1', `http://${SERVICE_VIP}/lb`);
      expect(r.ok).toBe(true);
      const answer = JSON.parse(r.out);
      // ENABLE_ORIG_SRC: the app sees client1's own address, not its ztunnel's.
      expect(answer.from).toBe(mesh.pods.client1!.pod.ip4);
      seen.add(answer.pod);
    }
    expect([...seen].sort()).toEqual(['server1', 'server2']);
    const line = await waitFor(
      () =>
        mesh.pods.client1!.logs.find(
          (l) =>
            l.component === 'access' &&
            l.direction === 'outbound' &&
            l.msg === 'connection complete',
        ),
      'outbound access log',
    );
    expect(line['dst.identity']).toMatch(/^spiffe:\/\/cluster.local\/ns\/default\/sa\/server[12]$/);
    expect(line['src.identity']).toBe('spiffe://cluster.local/ns/default/sa/client1');
  });

  it('passes traffic to a non-mesh destination through as plain TCP', async () => {
    const r = await curl('client1', `http://${mesh.pods.external!.pod.ip4}:8080/out`);
    expect(JSON.parse(r.out)).toMatchObject({ pod: 'external', path: '/out' });
  });

  it('enforces an L4 policy as the clients see it, and STRICT on plaintext', async () => {
    writeFileSync(mesh.file, mesh.yaml(ALLOW_CLIENT1));
    await waitFor(
      () =>
        ['server1', 'server2'].every((s) =>
          mesh.pods[s]!.logs.some((l) => l.msg === 'local config reloaded'),
        ) || undefined,
      'reload',
    );
    const allowed = await curl('client1', `http://${SERVICE_VIP}/allowed`);
    expect(JSON.parse(allowed.out).path).toBe('/allowed');
    const denied = await curl('client2', `http://${SERVICE_VIP}/denied`);
    expect(denied.ok).toBe(false);
    // The external pod has no ztunnel: its plaintext is captured into server1's 15006.
    const plain = await curl('external', `http://${mesh.pods.server1!.pod.ip4}:8080/plain`);
    expect(plain.ok).toBe(false);
    await waitFor(
      () =>
        mesh.pods.server1!.logs.find((l) =>
          String(l.error ?? '').includes(
            'explicitly denied by: istio-system/istio_converted_static_strict',
          ),
        ),
      'STRICT denial in server1 access log',
    );
  });
});
