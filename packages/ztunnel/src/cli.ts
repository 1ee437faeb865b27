import { Command, Option } from 'commander';
import { dumpConfig } from './admin/config-dump.js';
import { VERSION, Ztunnel } from './app.js';
import { loadLocalConfigFile, parseLocalConfig } from './config/local-config.js';
import { type ResolveInput, resolveConfig } from './config/resolve.js';
import { SETTINGS, type ZtunnelConfig } from './config/settings.js';
import { ZtunnelError } from './errors.js';
import { createLogger } from './logging.js';

/** Exit codes: 0 success, 1 runtime failure, 2 usage or configuration error. */
export const EXIT = { ok: 0, runtime: 1, usage: 2 } as const;

export interface CliIo {
  env?: Record<string, string | undefined>;
  stdout?: NodeJS.WritableStream;
  stderr?: NodeJS.WritableStream;
  /** Installs SIGTERM/SIGINT handlers (the real binary); tests pass false and abort via `signal`. */
  handleSignals?: boolean;
  signal?: AbortSignal;
  /** Called with the started proxy (tests and the demo use it). */
  onStarted?: (zt: Ztunnel) => void;
}

function addSettingOptions(cmd: Command): Command {
  cmd.option(
    '-c, --config <file>',
    'YAML settings file (camelCase setting names); flags and env win over it',
  );
  for (const s of SETTINGS) {
    const env = s.env
      ? ` (env: ${s.env})`
      : s.key === 'proxyMetadata'
        ? ' (env: ISTIO_META_<KEY>)'
        : '';
    const opt = new Option(
      `--${s.flag} <${s.arg}>`,
      `${s.description}${env} [default: ${s.defaultText}]`,
    );
    if (s.key === 'proxyMetadata') opt.argParser((v: string, prev: string[] = []) => [...prev, v]);
    cmd.addOption(opt);
  }
  return cmd;
}

function flagsOf(cmd: Command): ResolveInput['flags'] {
  const opts = cmd.opts<Record<string, string | string[]>>();
  const flags: Record<string, string | string[]> = {};
  for (const s of SETTINGS) {
    const name = s.flag.replace(/-([a-z0-9])/g, (_, ch: string) => ch.toUpperCase());
    if (opts[name] !== undefined) flags[s.key] = opts[name];
  }
  return flags as ResolveInput['flags'];
}

/** Runs the CLI; resolves with the process exit code. */
export async function main(argv: string[], io: CliIo = {}): Promise<number> {
  const env = io.env ?? process.env;
  const out = io.stdout ?? process.stdout;
  const err = io.stderr ?? process.stderr;
  let code: number = EXIT.ok;

  const resolve = (cmd: Command): ZtunnelConfig =>
    resolveConfig({
      flags: flagsOf(cmd),
      env,
      settingsFile: cmd.opts().config as string | undefined,
    });

  const program = new Command('ztunnel')
    .description(
      "Istio ambient-mode node proxy (ztunnel) in TypeScript. Settings come from flags, ztunnel's environment variables, or a settings file.",
    )
    .version(VERSION, '-V, --version')
    .exitOverride()
    .configureOutput({ writeOut: (s) => out.write(s), writeErr: (s) => err.write(s) })
    .showHelpAfterError();

  addSettingOptions(
    program
      .command('proxy', { isDefault: true })
      .description('run the proxy (the default command)')
      .addHelpText(
        'after',
        `
Examples:
  PROXY_MODE=dedicated PROXY_WORKLOAD_INFO=default/sleep/sleep LOCAL_XDS_PATH=./mesh.yaml ztunnel
  ztunnel --workload-info default/sleep/sleep --local-xds-path mesh.yaml --inbound-address 127.0.0.2:15008
  XDS_ADDRESS=https://istiod.istio-system.svc:15012 CA_ADDRESS=https://istiod.istio-system.svc:15012 ztunnel`,
      ),
  ).action(async (_o, cmd: Command) => {
    code = await runProxy(resolve(cmd), io);
  });

  addSettingOptions(
    program
      .command('config')
      .description('print the resolved settings as JSON and validate the local config file'),
  ).action(async (_o, cmd: Command) => {
    const config = resolve(cmd);
    if (config.localXdsPath) await loadLocalConfigFile(config.localXdsPath);
    if (config.localXds) parseLocalConfig(config.localXds, 'LOCAL_XDS');
    out.write(`${JSON.stringify(dumpConfig(config), null, 2)}\n`);
  });

  program
    .command('version')
    .description('print the version')
    .action(() => {
      out.write(`ztunnel ${VERSION} (@mesh/ztunnel, node ${process.version})\n`);
    });

  try {
    await program.parseAsync(argv, { from: 'user' });
  } catch (e) {
    const error = e as { code?: string; exitCode?: number; message: string };
    if (error.code === 'commander.helpDisplayed' || error.code === 'commander.version')
      return EXIT.ok;
    if (error.code?.startsWith('commander.')) return EXIT.usage;
    if (e instanceof ZtunnelError) {
      err.write(`ztunnel: ${e.message}\n`);
      const usage = [
        'ERR_ZTUNNEL_CONFIG_INVALID',
        'ERR_ZTUNNEL_LOCAL_CONFIG_INVALID',
        'ERR_ZTUNNEL_WORKLOAD_UNKNOWN',
      ];
      return usage.includes(e.code) ? EXIT.usage : EXIT.runtime;
    }
    err.write(`ztunnel: ${error.message}\n`);
    return EXIT.runtime;
  }
  return code;
}

async function runProxy(config: ZtunnelConfig, io: CliIo): Promise<number> {
  const logger = createLogger({
    level: config.logLevel,
    format: config.logFormat,
    destination: io.stdout,
  });
  const zt = await Ztunnel.start({ config, logger, ...(io.signal ? { signal: io.signal } : {}) });
  io.onStarted?.(zt);
  return new Promise<number>((resolve) => {
    let stopping = false;
    const stop = (why: string) => {
      if (stopping) {
        logger.warn({ why }, 'second stop request: exiting now');
        zt.destroy();
        resolve(EXIT.runtime);
        return;
      }
      stopping = true;
      logger.info({ why }, 'shutting down');
      zt.close().then(
        () => resolve(EXIT.ok),
        (e: Error) => {
          logger.error({ err: e }, 'shutdown failed');
          resolve(EXIT.runtime);
        },
      );
    };
    zt.on('quit', () => stop('POST /quitquitquit'));
    io.signal?.addEventListener('abort', () => stop('aborted'), { once: true });
    if (io.handleSignals) {
      process.on('SIGTERM', () => stop('SIGTERM'));
      process.on('SIGINT', () => stop('SIGINT'));
    }
  });
}
