import {
  createCsr,
  decodePem,
  encodePem,
  LocalCa,
  parseCertificates,
  parseCsr,
  SpiffeError,
  SpiffeId,
} from '@mesh/spiffe';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';

const ca = LocalCa.create();
const leafDer = decodePem(ca.issueSync(SpiffeId.parse('spiffe://cluster.local/ns/a/sa/b')).leaf)[0]!
  .der;
const csrDer = decodePem(createCsr('spiffe://cluster.local/ns/a/sa/b').csr)[0]!.der;

/** Throws only SpiffeError, whatever the input. */
function onlyTypedErrors(fn: () => unknown): void {
  try {
    fn();
  } catch (err) {
    expect(err).toBeInstanceOf(SpiffeError);
  }
}

/** Flips, truncates or splices bytes of a valid encoding. */
const mutated = (base: Buffer) =>
  fc
    .tuple(
      fc.array(fc.tuple(fc.nat(base.length - 1), fc.integer({ min: 0, max: 255 })), {
        maxLength: 6,
      }),
      fc.nat(base.length),
    )
    .map(([edits, cut]) => {
      const copy = Buffer.from(base);
      for (const [pos, byte] of edits) copy[pos] = byte;
      return copy.subarray(0, Math.max(1, cut));
    });

describe('parsers never throw anything but SpiffeError', () => {
  it('on random and mutated certificate DER and PEM', () => {
    fc.assert(
      fc.property(fc.oneof(fc.uint8Array({ maxLength: 300 }), mutated(leafDer)), (bytes) => {
        onlyTypedErrors(() => parseCertificates(bytes));
        onlyTypedErrors(() => parseCertificates(encodePem(bytes, 'CERTIFICATE')));
      }),
      { numRuns: 300 },
    );
  });

  it('on random and mutated CSRs', () => {
    fc.assert(
      fc.property(fc.oneof(fc.uint8Array({ maxLength: 300 }), mutated(csrDer)), (bytes) => {
        onlyTypedErrors(() => parseCsr(bytes));
        onlyTypedErrors(() => ca.signCsr(encodePem(bytes, 'CERTIFICATE REQUEST')));
      }),
      { numRuns: 300 },
    );
  });

  it('on arbitrary text as PEM', () => {
    fc.assert(
      fc.property(fc.string({ maxLength: 200 }), (text) => {
        onlyTypedErrors(() =>
          decodePem(`-----BEGIN CERTIFICATE-----\n${text}\n-----END CERTIFICATE-----`),
        );
        onlyTypedErrors(() => parseCertificates(text));
      }),
      { numRuns: 300 },
    );
  });
});
