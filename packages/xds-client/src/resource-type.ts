/** The outcome of decoding one resource: a plain value, or every problem found in it. */
export type DecodeResult<T> = { valid: true; value: T } | { valid: false; errors: string[] };

/**
 * One kind of xDS resource the client can subscribe to: its type URL, how to turn the bytes
 * of a `google.protobuf.Any` into a validated plain value (never throwing), and the reverse,
 * which the fake control plane and tests use.
 */
export interface XdsResourceType<T> {
  readonly typeUrl: string;
  /** Decode and validate; a decode never throws. */
  decode(bytes: Uint8Array): DecodeResult<T>;
  /** Encode a plain value; throws `ERR_XDS_ENCODE` for values that cannot be put on the wire. */
  encode(value: T): Uint8Array;
  /** The resource name the control plane uses for this value. */
  name(value: T): string;
  /** Other names a control plane may look the value up by (on-demand aliases). */
  aliases?(value: T): string[];
}

/** The value type of a resource type. */
export type ResourceValue<R> = R extends XdsResourceType<infer T> ? T : never;

/** Collects problems with a path prefix, so messages read `workload.addresses[1]: ...`. */
export class Problems {
  readonly list: string[] = [];
  add(path: string, message: string): void {
    this.list.push(path ? `${path}: ${message}` : message);
  }
}

/** Maps a wire enum number to its name; unknown numbers are recorded as problems. */
export function enumName<N extends string>(
  names: readonly N[],
  value: number | null | undefined,
  enumType: string,
  path: string,
  problems: Problems,
): N {
  const v = value ?? 0;
  const name = names[v];
  if (name === undefined) {
    problems.add(path, `unknown ${enumType} value ${v}`);
    return names[0]!;
  }
  return name;
}
