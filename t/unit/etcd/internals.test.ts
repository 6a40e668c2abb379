import t from 'tap'
import type { Etcd3 } from 'etcd3'
import { patchClient } from '../../../core/etcd/internals.js'

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
