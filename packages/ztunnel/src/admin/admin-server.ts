import { createServer, type Server } from 'node:http';
import type { LogLevel } from '../config/settings.js';
import type { Logger } from '../logging.js';

const LEVELS: readonly LogLevel[] = ['trace', 'debug', 'info', 'warn', 'error', 'fatal'];

export interface AdminHandlers {
  /** The `/config_dump` document. */
  configDump(): unknown;
  /** Root logger and per-component children whose levels `/logging` reads and sets. */
  loggers: { root: Logger; components: Map<string, Logger> };
  /** POST `/quitquitquit`: start a graceful shutdown. */
  quit(): void;
}

function levels(h: AdminHandlers): string {
  const lines = [`current log level is ${h.loggers.root.level}`];
  for (const [name, l] of h.loggers.components) lines.push(`  ${name}: ${l.level}`);
  return `${lines.join('\n')}\n`;
}

/**
 * The admin server (localhost by default): `/config_dump`, `/logging` (GET shows levels; POST
 * `?level=debug` sets all, `?level=inbound:debug,xds:warn` sets components), POST `/quitquitquit`.
 */
export function createAdminServer(h: AdminHandlers): Server {
  return createServer((req, res) => {
    const url = new URL(req.url ?? '/', 'http://admin');
    const text = (status: number, body: string) =>
      res.writeHead(status, { 'content-type': 'text/plain; charset=utf-8' }).end(body);
    switch (url.pathname) {
      case '/':
        return text(200, 'ztunnel admin\n  /config_dump\n  /logging\n  /quitquitquit (POST)\n');
      case '/config_dump':
        res
          .writeHead(200, { 'content-type': 'application/json' })
          .end(`${JSON.stringify(h.configDump(), null, 2)}\n`);
        return;
      case '/logging': {
        const spec = url.searchParams.get('level');
        if (req.method === 'GET' || spec === null) return text(200, levels(h));
        if (req.method !== 'POST') return text(405, 'use GET or POST\n');
        const problems: string[] = [];
        const updates: [Logger[], LogLevel][] = [];
        for (const part of spec.split(',')) {
          const [a, b] = part.split(':') as [string, string | undefined];
          const level = (b ?? a) as LogLevel;
          if (!LEVELS.includes(level)) {
            problems.push(`"${level}" is not one of ${LEVELS.join(', ')}`);
            continue;
          }
          if (b === undefined) {
            updates.push([[h.loggers.root, ...h.loggers.components.values()], level]);
          } else {
            const l = h.loggers.components.get(a);
            if (l) updates.push([[l], level]);
            else
              problems.push(
                `unknown component "${a}" (known: ${[...h.loggers.components.keys()].join(', ')})`,
              );
          }
        }
        if (problems.length > 0) return text(400, `${problems.join('\n')}\n`);
        for (const [loggers, level] of updates) for (const l of loggers) l.level = level;
        return text(200, levels(h));
      }
      case '/quitquitquit':
        if (req.method !== 'POST') return text(405, 'use POST\n');
        text(200, 'shutting down\n');
        h.quit();
        return;
      default:
        return text(404, 'not found\n');
    }
  });
}
