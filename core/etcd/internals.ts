import { castGrpcErrorMessage, EtcdInvalidAuthTokenError, Watcher, type Etcd3 } from 'etcd3'

/*
 * What etcd3 1.1.2 (pinned) offers no option for, or gets wrong, done on its internals. Every
 * access is checked: when the shape is not the one expected, patchClient says why, and the
 * caller refuses to start rather than silently run without it.
 */

interface VerifyingCreds {
  verifyOptions?: { rejectUnauthorized?: boolean }
  _isSecure?: () => boolean
}
interface WatchManager {
  handleCreatedResponse?: (res: { canceled?: boolean; cancel_reason?: string }) => void
  handleError?: (err: Error) => void
}
interface Internals {
  pool?: {
    hosts?: { channelCredentials?: VerifyingCreds }[]
    authenticator?: { credentials?: VerifyingCreds; invalidateMetadata?: () => void }
  }
  watchManager?: WatchManager
}

/**
 * Adjusts a fresh client, returning why it could not (or undefined):
 *
 * - `verify: false` turns off the server-certificate check of its TLS credentials (grpc-js
 *   reads `verifyOptions.rejectUnauthorized` at each connect; etcd3 builds them without it).
 * - a watcher keeps its resume point when etcd answers 'created' (keepWatchResumePoint).
 * - a watch stream carries the auth token it was opened with. When etcd has forgotten that
 *   token (a member restart; simple tokens live in memory) it refuses each watch created on the
 *   stream, and etcd3 also leaves the refused watch at the head of its attach queue, so no later
 *   watch on that stream is even sent: the config watcher would never watch again. The token is
 *   dropped and the stream reopened, which authenticates again and starts a fresh queue.
 */
export function patchClient(client: Etcd3, o: { verify: boolean }): string | undefined {
  const x = client as unknown as Internals
  const pool = x.pool
  if (!o.verify) {
    const creds = [...(pool?.hosts ?? []).map((h) => h.channelCredentials), pool?.authenticator?.credentials]
    if (creds.length < 2 || creds.some((c) => !c || typeof c.verifyOptions !== 'object' || c._isSecure?.() !== true)) {
      return 'the etcd client does not expose its TLS verification settings'
    }
    for (const c of creds) if (c?.verifyOptions) c.verifyOptions.rejectUnauthorized = false
  }
  const resume = keepWatchResumePoint()
  if (resume) return resume
  const m = x.watchManager
  const created = m?.handleCreatedResponse
  const reopen = m?.handleError
  const auth = pool?.authenticator
  if (!m || typeof created !== 'function' || typeof reopen !== 'function' || typeof auth?.invalidateMetadata !== 'function') {
    return 'the etcd client does not expose its watch manager'
  }
  m.handleCreatedResponse = (res) => {
    created.call(m, res)
    // a watch refusal carries etcd's error as text only; etcd3's own table names its class
    if (res.canceled && castGrpcErrorMessage(res.cancel_reason ?? '') instanceof EtcdInvalidAuthTokenError) {
      auth.invalidateMetadata?.()
      reopen.call(m, new Error(`watch refused: ${res.cancel_reason ?? ''}`))
    }
  }
  return undefined
}

interface WatcherInternals {
  request?: { start_revision?: string | number | null }
  updateRevision?: (res: { created?: boolean; header?: { revision?: string } }) => void
}
const PATCHED = Symbol.for('apisix-gateway.keepWatchResumePoint')

/**
 * etcd3 moves a watcher's resume point (`request.start_revision`) to the revision in every answer,
 * 'created' ones included. A 'created' answer carries etcd's current revision, not the last one
 * delivered: the events since the old resume point come on etcd's next sync (up to 100 ms later),
 * and a stream lost in between resumed past them, skipping them for good. A watcher that asked for
 * a revision keeps its resume point on 'created'; event answers move it as before (their revision
 * is the last one they deliver). Patches etcd3's Watcher class once per process; a reason when
 * its shape is not the expected one.
 */
export function keepWatchResumePoint(): string | undefined {
  const proto = Watcher.prototype as unknown as WatcherInternals & { [PATCHED]?: true }
  if (proto[PATCHED]) return undefined
  const update = proto.updateRevision
  if (typeof update !== 'function') return 'the etcd client does not expose how a watcher resumes'
  proto.updateRevision = function (this: WatcherInternals, res) {
    const asked = this.request?.start_revision
    if (res?.created && asked !== undefined && asked !== null && String(asked) !== '0') return
    update.call(this, res)
  }
  proto[PATCHED] = true
  return undefined
}
