import { Writable } from 'node:stream';
import pino, { type Logger } from 'pino';
import type { LogFormat, LogLevel } from './config/settings.js';

export type { Logger } from 'pino';

const LEVELS: Record<number, string> = {
  10: 'trace',
  20: 'debug',
  30: 'info',
  40: 'warn',
  50: 'error',
  60: 'fatal',
};

/** Renders pino's JSON lines as `time level [component] msg key=value…` for humans. */
function plainStream(out: NodeJS.WritableStream): Writable {
  return new Writable({
    write(chunk: Buffer, _enc, cb) {
      for (const line of chunk.toString('utf8').split('\n')) {
        if (!line) continue;
        try {
          const { time, level, msg, component, pid: _p, hostname: _h, ...rest } = JSON.parse(line);
          const fields = Object.entries(rest)
            .map(([k, v]) => `${k}=${typeof v === 'string' ? v : JSON.stringify(v)}`)
            .join(' ');
          const ts = new Date(time).toISOString();
          out.write(
            `${ts} ${(LEVELS[level] ?? level).padEnd(5)} ${component ? `${component} ` : ''}${msg ?? ''}${fields ? ` ${fields}` : ''}\n`,
          );
        } catch {
          out.write(`${line}\n`);
        }
      }
      cb();
    },
  });
}

export interface LoggerOptions {
  level: LogLevel;
  format: LogFormat;
  /** Where lines go; stdout when omitted. */
  destination?: NodeJS.WritableStream;
}

/** The binary's one root logger; subsystems use `child({ component })`. Tokens and keys are redacted. */
export function createLogger(options: LoggerOptions): Logger {
  const dest = options.destination ?? process.stdout;
  return pino(
    {
      level: options.level,
      base: undefined,
      redact: ['authToken', 'privateKey', 'config.authToken', 'headers.authorization'],
      timestamp: pino.stdTimeFunctions.isoTime,
      formatters: { level: (label) => ({ level: label }) },
    },
    options.format === 'plain' ? plainStream(dest) : (dest as Writable),
  );
}
