import type { PrimaryMessage, WorkerMessage } from './workers.js'

type Type = PrimaryMessage['type']
type Of<T extends Type> = Extract<PrimaryMessage, { type: T }>
type Handler = (m: PrimaryMessage, handle: unknown) => void

/** A worker's side of the IPC protocol typed in workers.ts: one listener, handlers by message type. */
export interface WorkerInbox {
  /** calls `handler` for each message of `type` (with the handle that came with it); returns its removal */
  on<T extends Type>(type: T, handler: (m: Of<T>, handle: unknown) => void): () => void
  /** answers the primary's `ask` for `what` with `reply`'s value (awaited when a promise) */
  answer(what: string, reply: () => unknown): void
}

/** Sends a message to the primary (nothing when this process has no IPC channel). */
export const sendToPrimary = (m: WorkerMessage): void => {
  process.send?.(m)
}

let inbox: WorkerInbox | undefined

/** The worker's one `process.on('message')` listener and its routing table (made on first use). */
export function workerInbox(): WorkerInbox {
  if (inbox !== undefined) return inbox
  const handlers = new Map<Type, Set<Handler>>()
  const answers = new Map<string, () => unknown>()
  process.on('message', (m: PrimaryMessage, handle: unknown) => {
    if (m.type === 'ask') {
      const reply = answers.get(m.what)
      if (reply !== undefined) void Promise.resolve(reply()).then((data) => sendToPrimary({ type: 'reply', id: m.id, data }))
    }
    for (const h of handlers.get(m.type) ?? []) h(m, handle)
  })
  inbox = {
    on(type, handler) {
      const set = handlers.get(type) ?? new Set<Handler>()
      handlers.set(type, set)
      const h = handler as Handler
      set.add(h)
      return () => set.delete(h)
    },
    answer(what, reply) {
      answers.set(what, reply)
    },
  }
  return inbox
}
