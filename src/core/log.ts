/**
 * Logging: one line per event on stderr (stdout is the protocol in stdio mode), and optionally to
 * the connected MCP client as `notifications/message`. Every line passes through `redact`.
 * MCP_LOG_FORMAT=json writes each line as one JSON object (`time`, `level`, `msg`, then the
 * fields), for log stores that query fields (CloudWatch Logs Insights, Loki, Elasticsearch).
 */
import { redact } from './redact.js';

export type LogLevel = 'debug' | 'info' | 'notice' | 'warning' | 'error';
export type LogFormat = 'text' | 'json';
export const LOG_LEVELS: readonly LogLevel[] = ['debug', 'info', 'notice', 'warning', 'error'];

export type LogFields = Record<string, unknown>;

export interface Logger {
  debug(message: string, fields?: LogFields): void;
  info(message: string, fields?: LogFields): void;
  notice(message: string, fields?: LogFields): void;
  warning(message: string, fields?: LogFields): void;
  error(message: string, fields?: LogFields): void;
  enabled(level: LogLevel): boolean;
  /** Also sends log lines to an MCP client; returns a function that stops it. */
  addSink(sink: LogSink): () => void;
}

/** Receives the redacted text of a line (without timestamp). */
export type LogSink = (level: LogLevel, text: string) => void;

const rank = (level: LogLevel) => LOG_LEVELS.indexOf(level);

function formatFields(fields: LogFields | undefined): string {
  if (!fields) return '';
  const parts: string[] = [];
  for (const [k, v] of Object.entries(fields)) {
    if (v === undefined) continue;
    const text = typeof v === 'string' ? v : v instanceof Error ? v.message : JSON.stringify(v);
    parts.push(`${k}=${/[\s"]/.test(text) ? JSON.stringify(text) : text}`);
  }
  return parts.length ? ` ${parts.join(' ')}` : '';
}

/** A field value for a JSON line: strings redacted one by one, so the line stays valid JSON. */
function jsonValue(v: unknown, depth = 0): unknown {
  if (typeof v === 'string') return redact(v);
  if (v instanceof Error) return redact(v.message);
  if (v === null || typeof v !== 'object') return typeof v === 'bigint' ? String(v) : v;
  if (depth > 4) return '[nested]';
  if (Array.isArray(v)) return v.map((x) => jsonValue(x, depth + 1));
  return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, jsonValue(x, depth + 1)]));
}

function jsonLine(lvl: LogLevel, message: string, fields: LogFields | undefined): string {
  const line: Record<string, unknown> = { time: new Date().toISOString(), level: lvl, msg: redact(message) };
  for (const [k, v] of Object.entries(fields ?? {})) {
    if (v !== undefined && !(k in line)) line[k] = jsonValue(v);
  }
  return `${JSON.stringify(line)}\n`;
}

export function createLogger(
  level: LogLevel,
  write: (line: string) => void = (line) => process.stderr.write(line),
  format: LogFormat = 'text',
): Logger {
  const sinks = new Set<LogSink>();
  const min = rank(level);
  const log = (lvl: LogLevel, message: string, fields?: LogFields) => {
    if (rank(lvl) < min) return;
    const text = format === 'text' || sinks.size ? redact(`${message}${formatFields(fields)}`) : '';
    write(format === 'json' ? jsonLine(lvl, message, fields) : `${new Date().toISOString()} ${lvl.toUpperCase()} ${text}\n`);
    for (const sink of sinks) {
      try {
        sink(lvl, text);
      } catch {
        // a client that went away must not break logging
      }
    }
  };
  return {
    debug: (m, f) => log('debug', m, f),
    info: (m, f) => log('info', m, f),
    notice: (m, f) => log('notice', m, f),
    warning: (m, f) => log('warning', m, f),
    error: (m, f) => log('error', m, f),
    enabled: (lvl) => rank(lvl) >= min,
    addSink(sink) {
      sinks.add(sink);
      return () => sinks.delete(sink);
    },
  };
}

/** For tests and library use: drops everything. */
export const silentLogger: Logger = createLogger('error', () => {});
