export type LogLevel = 'debug' | 'info' | 'warn' | 'error';

/** Structured events. Callers never pass secrets in fields. */
export interface Logger {
  log(level: LogLevel, event: string, fields?: Record<string, unknown>): void;
}
