// CSR + sign throughput of @mesh/spiffe's LocalCa, in-process and over the Istio CA gRPC API,
// against openssl signing the same number of CSRs in the same run.
import { execFile } from 'node:child_process';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { CA_FILES, createCsr, IstioCaClient, IstioCaServer, LocalCa, SpiffeId } from '@mesh/spiffe';
import type { Measurement, Scenario, ScenarioContext } from '../scenario.js';

const exec = promisify(execFile);
const ID = SpiffeId.parse('spiffe://cluster.local/ns/default/sa/bench');

function percentile(sorted: number[], p: number): number {
  if (sorted.length === 0) return 0;
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]!;
}

/** Runs `fn` `n` times with at most `concurrency` in flight; returns ops/s and latencies. */
async function measure(
  n: number,
  concurrency: number,
  signal: AbortSignal,
  fn: (i: number) => Promise<unknown> | unknown,
): Promise<{ opsPerSec: number; latencies: number[] }> {
  const latencies: number[] = [];
  let next = 0;
  const started = performance.now();
  const worker = async () => {
    while (next < n) {
      signal.throwIfAborted();
      const i = next++;
      const t = performance.now();
      await fn(i);
      latencies.push(performance.now() - t);
    }
  };
  await Promise.all(Array.from({ length: concurrency }, worker));
  const seconds = (performance.now() - started) / 1000;
  latencies.sort((a, b) => a - b);
  return { opsPerSec: n / seconds, latencies };
}

function figure(
  name: string,
  r: { opsPerSec: number; latencies: number[] },
  compareTo: string[] | undefined,
): Measurement {
  return {
    name,
    unit: 'ops/s',
    value: Math.round(r.opsPerSec * 10) / 10,
    better: 'higher',
    compareTo,
    extra: {
      p50_ms: percentile(r.latencies, 50),
      p90_ms: percentile(r.latencies, 90),
      p99_ms: percentile(r.latencies, 99),
      count: r.latencies.length,
    },
  };
}

const scenario: Scenario = {
  name: 'spiffe/csr-sign',
  description:
    'CSR generation + signing throughput of LocalCa in-process and over the gRPC Istio CA (TLS, loopback), vs openssl signing the same number of CSRs',
  kind: 'micro',
  requires: { commands: ['openssl'] },
  async run(ctx: ScenarioContext) {
    const n = ctx.quick ? 40 : 400;
    const caDir = join(ctx.tmpDir, 'ca');
    const ca = await LocalCa.open(caDir, { signal: ctx.signal });

    // Same CSRs for every signer that takes a CSR.
    const csrs = Array.from({ length: n }, () => createCsr(ID).csr);
    const ext = join(ctx.tmpDir, 'leaf.cnf');
    await writeFile(
      ext,
      [
        'basicConstraints=critical,CA:false',
        'keyUsage=critical,digitalSignature,keyEncipherment',
        'extendedKeyUsage=serverAuth,clientAuth',
        `subjectAltName=critical,URI:${ID}`,
        '',
      ].join('\n'),
    );
    for (let i = 0; i < n; i++) await writeFile(join(ctx.tmpDir, `req-${i}.csr`), csrs[i]!);

    const baseline = 'openssl x509 -req (sign only)';
    ctx.log(`openssl: signing ${n} CSRs, one process each`);
    const opensslSign = await measure(n, 1, ctx.signal, (i) =>
      exec('openssl', [
        'x509',
        '-req',
        '-in',
        join(ctx.tmpDir, `req-${i}.csr`),
        '-CA',
        join(caDir, CA_FILES.caCert),
        '-CAkey',
        join(caDir, CA_FILES.caKey),
        '-set_serial',
        `0x${(i + 1).toString(16)}`,
        '-days',
        '1',
        '-extfile',
        ext,
        '-out',
        join(ctx.tmpDir, `leaf-${i}.pem`),
      ]),
    );
    const baselineKeygen = 'openssl req -newkey ec + x509 -req (CSR+sign)';
    ctx.log(`openssl: key + CSR + sign ${n} times`);
    const opensslFull = await measure(n, 1, ctx.signal, (i) =>
      exec('sh', [
        '-c',
        `openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout ${join(ctx.tmpDir, `k-${i}.pem`)} -subj / -addext "subjectAltName=critical,URI:${ID}" 2>/dev/null | openssl x509 -req -CA ${join(caDir, CA_FILES.caCert)} -CAkey ${join(caDir, CA_FILES.caKey)} -set_serial ${i + 1} -days 1 -extfile ${ext} -out ${join(ctx.tmpDir, `full-${i}.pem`)} 2>/dev/null`,
      ]),
    );

    ctx.log(`LocalCa: signCsr ${n} times`);
    const signOnly = await measure(n, 1, ctx.signal, (i) =>
      ca.signCsr(csrs[i]!, { ttlSeconds: 86_400 }),
    );
    ctx.log(`LocalCa: issue (key + CSR + sign) ${n} times`);
    const issue = await measure(n, 1, ctx.signal, () => ca.issueSync(ID, { ttlSeconds: 86_400 }));

    const server = new IstioCaServer({ ca, tokens: { bench: { mayImpersonate: true } } });
    await server.listen();
    const client = new IstioCaClient({
      address: `localhost:${server.port}`,
      rootCert: server.rootCert,
      token: 'bench',
    });
    try {
      await client.issue(ID); // connect + TLS handshake outside the measurement
      ctx.log(`gRPC CA: issue ${n} times, 1 in flight`);
      const grpcSerial = await measure(n, 1, ctx.signal, () =>
        client.issue(ID, { signal: ctx.signal }),
      );
      ctx.log(`gRPC CA: issue ${n} times, 8 in flight`);
      const grpc8 = await measure(n, 8, ctx.signal, () => client.issue(ID, { signal: ctx.signal }));
      const both = [baseline, baselineKeygen];
      return {
        measurements: [
          figure(baseline, opensslSign, undefined),
          figure(baselineKeygen, opensslFull, undefined),
          figure('LocalCa.signCsr (sign only)', signOnly, [baseline]),
          figure('LocalCa.issue (key + CSR + sign, in-process)', issue, both),
          figure('IstioCaClient -> IstioCaServer (gRPC+TLS, 1 in flight)', grpcSerial, both),
          figure('IstioCaClient -> IstioCaServer (gRPC+TLS, 8 in flight)', grpc8, both),
        ],
        notes: [
          `${n} operations per figure; ECDSA P-256 keys, ecdsa-with-SHA256 signatures, same CA key for all signers`,
          'openssl runs one process per operation (how the CLI signs); its figures include process start-up',
          'the gRPC figures include a fresh key + CSR on the client, PEM parsing, chain and key checks on the response; client and server share one process and event loop',
        ],
      };
    } finally {
      client.close();
      await server.close();
    }
  },
};

export default scenario;
