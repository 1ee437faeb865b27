import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';
import { getSystemErrorName } from 'node:util';
import { RedirectError, type SystemError } from './errors.js';

/** What the compiled addon exports (native/redirect_linux.c). Internal. */
export interface NativeBinding {
  supported: boolean;
  createListenSocket(opts: NativeSocketSpec): number;
  createSocket(opts: NativeSocketSpec): number;
  originalDestination(fd: number): {
    address: string;
    port: number;
    family: 'IPv4' | 'IPv6';
    source: 'conntrack' | 'local';
  };
  setMark(fd: number, mark: number): void;
  getMark(fd: number): number;
  enterNetns(opts: { netns: string | number }): void;
  netnsId(path?: string): number;
  probe(): Record<
    'transparent' | 'transparent6' | 'freebind' | 'reusePort' | 'mark' | 'setns',
    number
  >;
}

export interface NativeSocketSpec {
  family: 4 | 6;
  address?: string;
  port?: number;
  backlog?: number;
  transparent?: boolean;
  freebind?: boolean;
  reusePort?: boolean;
  reuseAddr?: boolean;
  ipv6Only?: boolean;
  mark?: number;
  netns?: string | number;
}

/** The package root (one level above both `src/` and `dist/`), where `build/` lives. */
export const packageRoot = fileURLToPath(new URL('..', import.meta.url));

function load(): { binding: NativeBinding | undefined; error: Error | undefined } {
  if (process.env.MESH_REDIRECT_FORCE_UNSUPPORTED === '1') {
    return {
      binding: undefined,
      error: new Error('the addon was disabled by MESH_REDIRECT_FORCE_UNSUPPORTED=1'),
    };
  }
  try {
    const require = createRequire(import.meta.url);
    const nodeGypBuild = require('node-gyp-build') as (dir: string) => NativeBinding;
    const binding = nodeGypBuild(packageRoot);
    if (binding.supported !== true) {
      return {
        binding: undefined,
        error: new Error(`transparent capture needs Linux; this is ${process.platform}`),
      };
    }
    return { binding, error: undefined };
  } catch (err) {
    return { binding: undefined, error: err as Error };
  }
}

const loaded = load();

/** True when the native addon loaded and this platform has the socket options (Linux). */
export const isSupported: boolean = loaded.binding !== undefined;

/** Why the addon is unavailable, when {@link isSupported} is false. */
export const loadError: Error | undefined = loaded.error;

const hints: Record<string, string> = {
  IP_TRANSPARENT: 'needs CAP_NET_ADMIN or CAP_NET_RAW',
  IPV6_TRANSPARENT: 'needs CAP_NET_ADMIN or CAP_NET_RAW',
  SO_MARK: 'needs CAP_NET_ADMIN',
  CLONE_NEWNET: 'entering a network namespace needs CAP_SYS_ADMIN',
};

/** Turns the addon's `{nativeErrno, syscall, option}` into an error shaped like Node's own. */
function systemError(raw: Error & { nativeErrno: number; syscall: string; option?: string }) {
  const errno = -raw.nativeErrno;
  const code = getSystemErrorName(errno);
  const what = raw.option ? `${raw.syscall}(${raw.option})` : raw.syscall;
  let hint = '';
  if (code === 'EPERM' || code === 'EACCES') {
    hint = raw.option && hints[raw.option] ? `: ${hints[raw.option]}` : '';
  } else if (code === 'EADDRNOTAVAIL' && raw.syscall === 'bind') {
    hint =
      ': the address is not local here; set `transparent` (or `freebind`) to bind a foreign address';
  }
  const err = new Error(
    `${what} failed: ${code} (${raw.message.split(': ').pop()})${hint}`,
  ) as SystemError;
  err.code = code;
  err.errno = errno;
  err.syscall = raw.syscall;
  if (raw.option) err.option = raw.option;
  return err;
}

/**
 * Runs one addon call. Throws ERR_REDIRECT_NOT_SUPPORTED without the addon, a Node-shaped
 * system error for kernel failures, and passes other errors through.
 */
export function callNative<T>(what: string, fn: (b: NativeBinding) => T): T {
  const binding = loaded.binding;
  if (binding === undefined) {
    throw new RedirectError(
      'ERR_REDIRECT_NOT_SUPPORTED',
      `${what} is not supported: ${loaded.error?.message ?? 'no native addon'}`,
      { cause: loaded.error },
    );
  }
  try {
    return fn(binding);
  } catch (err) {
    if (
      err instanceof Error &&
      typeof (err as { nativeErrno?: unknown }).nativeErrno === 'number'
    ) {
      throw systemError(err as Error & { nativeErrno: number; syscall: string; option?: string });
    }
    if (err instanceof TypeError) {
      throw new RedirectError('ERR_REDIRECT_INVALID_ARGUMENT', `${what}: ${err.message}`);
    }
    throw err;
  }
}
