/**
 * The session-ticket secrets of the data plane (issue 7). The primary owns them: one current
 * secret that every worker derives its per-object ticket keys from (so a ticket made by one
 * worker resumes on any other), and the one it replaced, still accepted until the next rotation.
 * Pure: the caller brings the fresh random bytes and the clock.
 */

/** How often the primary replaces the current secret; a ticket stays usable for one or two periods. */
export const TICKET_ROTATE_MS = 12 * 60 * 60 * 1000

/** The secrets a worker holds; `epoch` counts rotations since the primary started. */
export interface TicketSecrets {
  readonly epoch: number
  readonly current: Buffer
  readonly previous: Buffer | undefined
}

/** The first secrets of a primary. */
export const firstSecrets = (fresh: Buffer): TicketSecrets => ({ epoch: 0, current: fresh, previous: undefined })

/** The secrets after one rotation: `fresh` becomes current, the current one is still accepted. */
export const rotateSecrets = (s: TicketSecrets, fresh: Buffer): TicketSecrets => ({ epoch: s.epoch + 1, current: fresh, previous: s.current })

/** `epoch:current[:previous]` in hex, for the worker's environment and the primary's IPC message. */
export const encodeSecrets = (s: TicketSecrets): string =>
  [String(s.epoch), s.current.toString('hex'), ...(s.previous ? [s.previous.toString('hex')] : [])].join(':')

const HEX = /^(?:[0-9a-f]{2}){32,}$/

/** Reads encodeSecrets' text back; a bare hex secret (the older form) is epoch 0; undefined when malformed. */
export function decodeSecrets(text: string): TicketSecrets | undefined {
  const parts = text.split(':')
  if (parts.length === 1 && HEX.test(parts[0] ?? '')) return firstSecrets(Buffer.from(parts[0] ?? '', 'hex'))
  if (parts.length < 2 || parts.length > 3 || !/^\d+$/.test(parts[0] ?? '')) return undefined
  const [epoch, current, previous] = parts
  if (!HEX.test(current ?? '') || (previous !== undefined && !HEX.test(previous))) return undefined
  return { epoch: Number(epoch), current: Buffer.from(current ?? '', 'hex'), previous: previous === undefined ? undefined : Buffer.from(previous, 'hex') }
}

/** The key name OpenSSL writes at the start of every ticket: the first 16 bytes of Node's 48-byte `ticketKeys`, in hex. */
export const ticketKeyName = (ticketKeys: Buffer): string => ticketKeys.subarray(0, 16).toString('hex')
