/**
 * `pnpm demo --netns` (root): the same story with every workload in its own network namespace
 * and real transparent capture: clients simply connect to the service address.
 */
import { writeFileSync } from 'node:fs';
import { namespaceSupport } from '@mesh/redirect/testing';
import { ALLOW_CLIENT1, type NetnsMesh, SERVICE_VIP, startNetnsMesh } from './netns-mesh.js';
import {
  bold,
  cyan,
  dim,
  indent,
  metricsExcerpt,
  POLICY_NOTE,
  red,
  Transcript,
} from './transcript.js';

export async function netnsDemo(keep: boolean): Promise<number> {
  const support = namespaceSupport();
  if (!support.ok) {
    console.error(red(`pnpm demo --netns needs root: ${support.reason}`));
    return 1;
  }
  const t = new Transcript();
  console.log(bold('mesh demo in network namespaces: real capture, no SOCKS'));
  t.heading(
    1,
    'Pods in their own network namespaces, a ztunnel inside each mesh pod, in-pod capture rules',
  );
  const mesh: NetnsMesh = await startNetnsMesh();
  try {
    for (const p of Object.values(mesh.pods)) {
      console.log(
        `  ${bold(p.name.padEnd(9))} ${p.pod.ip4.padEnd(12)} ${dim(p.pod.name)}  ${p.mesh ? `ztunnel ${dim(`spiffe://cluster.local/ns/default/sa/${p.name}`)}` : dim('no ztunnel (outside the mesh)')}`,
      );
    }
    console.log(
      dim(
        `  service server.default.svc.cluster.local VIP ${SERVICE_VIP}:80 → server1, server2 port 8080`,
      ),
    );
    t.check('ztunnels ready in every mesh pod', true);

    const curl = (from: string, url: string) =>
      mesh.pods[from]!.pod.exec(['curl', '-sS', '--max-time', '5', url]).then(
        (r) => ({ ok: true, out: r.stdout.trim() }),
        (err: Error) => ({ ok: false, out: err.message.split('\n')[0] ?? '' }),
      );

    t.heading(2, `client1: curl http://${SERVICE_VIP}/ (captured by iptables into its ztunnel)`);
    const answered = new Set<string>();
    for (let i = 0; i < 20 && answered.size < 2; i++) {
      const r = await curl('client1', `http://${SERVICE_VIP}/get`);
      if (r.ok) answered.add(JSON.parse(r.out).pod);
      if (i === 0) console.log(indent(`response: ${r.out}`));
    }
    const line = mesh.pods.client1!.logs.find(
      (l) => l.component === 'access' && l.msg === 'connection complete',
    );
    console.log(indent(`source identity      ${cyan(String(line?.['src.identity']))}`));
    console.log(indent(`destination identity ${cyan(String(line?.['dst.identity']))}`));
    t.check(
      `answered by ${[...answered].sort().join(' and ')} (load balanced)`,
      answered.size === 2,
    );

    t.heading(3, 'Add an L4 AuthorizationPolicy and STRICT');
    console.log(indent(ALLOW_CLIENT1, '  │ '));
    writeFileSync(mesh.file, mesh.yaml(ALLOW_CLIENT1));
    for (let i = 0; i < 100; i++) {
      if (
        ['server1', 'server2'].every((s) =>
          mesh.pods[s]!.logs.some((l) => l.msg === 'local config reloaded'),
        )
      )
        break;
      await new Promise((r) => setTimeout(r, 50));
    }
    const denied = await curl('client2', `http://${SERVICE_VIP}/get`);
    console.log(indent(`client2: ${denied.out}`));
    const why = ['server1', 'server2']
      .flatMap((s) => mesh.pods[s]!.logs)
      .find((l) => String(l.error ?? '').includes('policy rejection'));
    console.log(indent(`server's ztunnel: ${String(why?.error ?? '?')} ${POLICY_NOTE}`));
    t.check('client2 refused', !denied.ok);
    t.check('client1 still allowed', (await curl('client1', `http://${SERVICE_VIP}/get`)).ok);

    t.heading(4, `external (no ztunnel) → server1 ${mesh.pods.server1!.pod.ip4}:8080 in plaintext`);
    const plain = await curl('external', `http://${mesh.pods.server1!.pod.ip4}:8080/`);
    console.log(indent(`external: ${plain.out}`));
    t.check('plaintext refused under STRICT', !plain.ok);

    t.heading(5, "server1's /metrics (excerpt) and an access-log line");
    const metrics = await mesh.pods.server1!.pod.exec([
      'curl',
      '-s',
      'http://127.0.0.1:15020/metrics',
    ]);
    console.log(indent(metricsExcerpt(metrics.stdout), '  │ '));
    const access = mesh.pods.server1!.logs.find(
      (l) => l.component === 'access' && l.msg === 'connection complete',
    );
    console.log(indent(JSON.stringify(access), '  │ '));
    t.check(
      'metrics and access log recorded',
      /reporter="destination"/.test(metrics.stdout) && access !== undefined,
    );

    const code = t.summary();
    if (keep) {
      const ns = (n: string) => mesh.pods[n]!.pod.name;
      console.log(`\n${bold('The mesh keeps running (Ctrl-C to stop). Try:')}
  ip netns exec ${ns('client1')} curl http://${SERVICE_VIP}/get
  ip netns exec ${ns('client2')} curl http://${SERVICE_VIP}/get
  ip netns exec ${ns('server1')} curl http://127.0.0.1:15000/config_dump
  ip netns exec ${ns('server1')} iptables-save
  ${dim(`edit ${mesh.file} (re-read on save)`)}`);
      await new Promise<void>((resolve) => {
        process.once('SIGINT', resolve);
        process.once('SIGTERM', resolve);
      });
    }
    return code;
  } finally {
    await mesh.close();
  }
}
