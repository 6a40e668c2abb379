import t from 'tap'
import { Watcher, type Etcd3 } from 'etcd3'
import { keepWatchResumePoint, patchClient } from '../../../core/etcd/internals.js'

const creds = () => ({ verifyOptions: {} as { rejectUnauthorized?: boolean }, _isSecure: () => true })
const fake = (o: { secure?: boolean; manager?: boolean } = {}) => {
  const shared = o.secure === false ? { _isSecure: () => false } : creds()
  const calls: string[] = []
  const m = {
    handleCreatedResponse: (res: { canceled?: boolean }) => calls.push(`created ${String(res.canceled)}`),
    handleError: (e: Error) => calls.push(`reopen ${e.message}`),
  }
  const client = {
    pool: { hosts: [{ channelCredentials: shared }, { channelCredentials: shared }], authenticator: { credentials: shared, invalidateMetadata: () => calls.push('invalidate') } },
    ...(o.manager === false ? {} : { watchManager: m }),
  }
  return { client: client as unknown as Etcd3, shared, calls, m }
}

t.test('patchClient: verify false on TLS credentials → rejectUnauthorized false on every member and the authenticator', async (t) => {
  const f = fake()
  t.equal(patchClient(f.client, { verify: false }), undefined)
  t.same((f.shared as ReturnType<typeof creds>).verifyOptions, { rejectUnauthorized: false })
})

t.test('patchClient: verify true → credentials untouched', async (t) => {
  const f = fake()
  t.equal(patchClient(f.client, { verify: true }), undefined)
  t.same((f.shared as ReturnType<typeof creds>).verifyOptions, {})
})

t.test('patchClient: shapes it does not know → a reason, never a silent no-op', async (t) => {
  t.match(patchClient(fake({ secure: false }).client, { verify: false }), /TLS verification settings/)
  t.match(patchClient({} as unknown as Etcd3, { verify: false }), /TLS verification settings/)
  t.match(patchClient(fake({ manager: false }).client, { verify: true }), /watch manager/)
})

t.test('patchClient: a watch refused for its auth token → token dropped, stream reopened; other refusals untouched', async (t) => {
  const f = fake()
  patchClient(f.client, { verify: true })
  const m = (f.client as unknown as { watchManager: { handleCreatedResponse(r: object): void } }).watchManager
  m.handleCreatedResponse({ canceled: false })
  m.handleCreatedResponse({ canceled: true, cancel_reason: 'rpc error: code = PermissionDenied desc = etcdserver: permission denied' })
  m.handleCreatedResponse({ canceled: true, cancel_reason: 'rpc error: code = Unauthenticated desc = etcdserver: invalid auth token' })
  t.same(f.calls, ['created false', 'created true', 'created true', 'invalidate', 'reopen watch refused: rpc error: code = Unauthenticated desc = etcdserver: invalid auth token'])
})

t.test("keepWatchResumePoint: a 'created' answer keeps the revision a watcher resumes from; event answers move it; a watch from now takes it", async (t) => {
  t.equal(keepWatchResumePoint(), undefined)
  t.equal(keepWatchResumePoint(), undefined, 'idempotent')
  const watcherAt = (start?: string): Watcher => {
    const manager = { attach: () => undefined }
    const namespace = { unprefix: (k: Buffer) => k }
    return new Watcher(manager as never, namespace as never, start === undefined ? {} : { start_revision: start })
  }
  const cases: Array<{ name: string; start?: string; answers: Array<'created' | 'events'>; want: string | number | undefined }> = [
    { name: 'resumed at 5, created at 9', start: '5', answers: ['created'], want: '5' },
    { name: 'resumed at 5, created at 9, events up to 9', start: '5', answers: ['created', 'events'], want: '10' },
    { name: 'resumed at 5, created at 9 twice', start: '5', answers: ['created', 'created'], want: '5' },
    { name: 'from now, created at 9', answers: ['created'], want: '10' },
  ]
  for (const c of cases) {
    const w = watcherAt(c.start)
    for (const a of c.answers) {
      if (a === 'created') w.emit('connected', { created: true, header: { revision: '9' } })
      else w.emit('data', { created: false, header: { revision: '9' }, events: [] })
    }
    t.equal(w.lastRevision() === null ? undefined : String(w.lastRevision()), c.want, c.name)
  }
})
