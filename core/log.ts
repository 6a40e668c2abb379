import { pino, type Logger } from 'pino'

/**
 * The gateway's own log: JSON lines on stderr, each with one `component`. pino appends a child's
 * bindings to its parent's, so a component's logger is a child of the root, never of another
 * component's (the admin's lines once carried `"component":"primary","component":"admin"`).
 */
export function createRootLogger(level = process.env['APISIX_LOG_LEVEL'] ?? 'info'): Logger {
  return pino({ level, base: { pid: process.pid } }, pino.destination({ fd: 2, sync: false }))
}

/** A component's logger on a root from createRootLogger: its lines carry `component` once. */
export const componentLogger = (root: Logger, component: string): Logger => root.child({ component })

/** A process with one component (a worker): its own root and that component's logger. */
export const createLogger = (component: string, level?: string): Logger => componentLogger(createRootLogger(level), component)
export type { Logger }
