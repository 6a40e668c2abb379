import { pino, type Logger } from 'pino'

/** The gateway's own log: JSON lines on stderr, one child logger per component. */
export function createLogger(component: string, level = process.env['APISIX_LOG_LEVEL'] ?? 'info'): Logger {
  return pino({ level, base: { pid: process.pid, component } }, pino.destination({ fd: 2, sync: false }))
}
export type { Logger }
