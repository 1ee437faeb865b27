import { Server, ServerCredentials, type ServerUnaryCall, type sendUnaryData } from '@grpc/grpc-js';
import {
  type IstioCertificateRequest,
  type IstioCertificateResponse,
  istioCertificateService,
  type LocalCa,
} from '@mesh/spiffe';

export type RogueHandler = (
  request: IstioCertificateRequest,
  raw: Buffer | undefined,
) => IstioCertificateResponse | 'hang' | Promise<IstioCertificateResponse | 'hang'>;

/** A CA endpoint that answers however the test wants: a peer that misbehaves on purpose. */
export async function startRogueCa(
  ca: LocalCa,
  handler: RogueHandler,
): Promise<{ address: string; close(): void }> {
  const def = istioCertificateService();
  const method = def.CreateCertificate!;
  let lastRaw: Buffer | undefined;
  // Keep the raw request bytes too, so tests can decode them with an independent decoder.
  const service = {
    CreateCertificate: {
      ...method,
      requestDeserialize: (buf: Buffer) => {
        lastRaw = Buffer.from(buf);
        return method.requestDeserialize(buf);
      },
    },
  };
  const server = new Server();
  const pending = new Set<sendUnaryData<IstioCertificateResponse>>();
  server.addService(service, {
    CreateCertificate: async (
      call: ServerUnaryCall<IstioCertificateRequest, IstioCertificateResponse>,
      callback: sendUnaryData<IstioCertificateResponse>,
    ) => {
      const res = await handler(call.request, lastRaw);
      if (res === 'hang') {
        pending.add(callback);
        return;
      }
      callback(null, res);
    },
  });
  const serving = ca.issueServingCertificate({ ipAddresses: ['127.0.0.1'] });
  const port = await new Promise<number>((resolve, reject) =>
    server.bindAsync(
      '127.0.0.1:0',
      ServerCredentials.createSsl(null, [
        {
          private_key: Buffer.from(serving.privateKey),
          cert_chain: Buffer.from(serving.certChain),
        },
      ]),
      (err, p) => (err ? reject(err) : resolve(p)),
    ),
  );
  return {
    address: `127.0.0.1:${port}`,
    close: () => server.forceShutdown(),
  };
}
