import { SpiffeError } from '@mesh/spiffe';
import { expect } from 'vitest';

/** The `code` of the SpiffeError `fn` throws (failing the test for any other error), or undefined. */
export function codeOf(fn: () => unknown): string | undefined {
  try {
    fn();
  } catch (err) {
    expect(err).toBeInstanceOf(SpiffeError);
    return (err as SpiffeError).code;
  }
  return undefined;
}
