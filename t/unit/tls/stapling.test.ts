import t from 'tap'
import { execFileSync } from 'node:child_process'
import { readFileSync } from 'node:fs'
import { createServer as createHttpServer } from 'node:http'
import { createServer as createNetServer, type AddressInfo } from 'node:net'
import { join } from 'node:path'
import { createServer as createTlsServer } from 'node:tls'
import { enableStapling } from '../../../core/tls/stapling.js'
import { blockDer, pemBlocksOf } from '../../../core/x509/pem.js'
import { OpensslCa } from '../../lib/openssl-ca.js'

// The stapling cache on a clock the test moves: a response made by `openssl ocsp` (offline, from
// the request openssl makes for the same certificate) is served by an HTTP responder that counts
// its requests. cache_ttl bounds how long a response is stapled before the next fetch.
t.test('stapling: no staple until fetched, then the cached one within cache_ttl, a new fetch after', async (t) => {
  const responder = createHttpServer()
  await new Promise<void>((r) => responder.listen(0, '127.0.0.1', r))
  t.teardown(() => responder.close())
  const port = (responder.address() as AddressInfo).port
  const ca = new OpensslCa('Stapling Unit CA')
  t.teardown(() => ca.cleanup())
  const leaf = ca.issue('staple.test', ['basicConstraints = CA:FALSE', 'extendedKeyUsage = serverAuth', `authorityInfoAccess = OCSP;URI:http://127.0.0.1:${port}/`])
  const ossl = (args: string[]) => execFileSync('openssl', args, { cwd: ca.dir, stdio: ['ignore', 'pipe', 'pipe'] })
  ossl(['ocsp', '-issuer', ca.self.certPath, '-cert', leaf.certPath, '-no_nonce', '-reqout', 'req.der'])
  ossl(['ocsp', '-index', join(ca.dir, 'index.txt'), '-rsigner', ca.self.certPath, '-rkey', ca.self.keyPath, '-CA', ca.self.certPath, '-reqin', 'req.der', '-respout', 'resp.der', '-ndays', '7'])
  const resp = readFileSync(join(ca.dir, 'resp.der'))
  let asked = 0
  responder.on('request', (req, res) => {
    asked++
    req.resume()
    req.on('end', () => res.writeHead(200, { 'content-type': 'application/ocsp-response' }).end(resp))
  })

  // a minute ahead: the response's thisUpdate is the second it was made
  let now = Date.now() + 60_000
  const server = createTlsServer({})
  const errors: string[] = []
  const stapling = enableStapling(server, { skip_verify: false, cache_ttl: 60 }, [leaf.cert + ca.self.cert], (why) => errors.push(why), () => now)
  const der = (pem: string) => blockDer(pemBlocksOf(pem, 'CERTIFICATE')[0]!) as Buffer
  /** One connection as the policy sees it: poke(), then Node's OCSPRequest if a listener is there (Node asks only then). */
  const ask = () => new Promise<Buffer | undefined>((resolve) => {
    stapling.poke()
    if (!server.emit('OCSPRequest', der(leaf.cert), der(ca.self.cert), (_e: Error | null, r?: Buffer) => resolve(r))) resolve(undefined)
  })
  t.equal(server.listenerCount('OCSPRequest'), 0, 'no listener before a response is in: Node does not pause the handshakes for nothing')

  // enableStapling fetched at once, from the issuer after the leaf in the PEM
  const deadline = Date.now() + 10_000
  while (asked === 0 || (await ask()) === undefined) {
    if (Date.now() > deadline) throw new Error(`no staple: ${errors.join('; ')}`)
    await new Promise((r) => setImmediate(r))
  }
  t.equal(asked, 1, 'one fetch')
  t.same(await ask(), resp, 'the response is stapled')
  now += 59_000
  t.same(await ask(), resp, 'still within cache_ttl (60 s): the cached one, no new fetch')
  t.equal(asked, 1)
  now += 2_000
  t.equal(server.listenerCount('OCSPRequest'), 1, 'a fresh response: the listener is on')
  t.equal(await ask(), undefined, 'past cache_ttl: no staple this time (never waits for the network)')
  t.equal(server.listenerCount('OCSPRequest'), 0, 'and the listener is off until the next response is in')
  const again = Date.now() + 10_000
  while (asked < 2 || (await ask()) === undefined) {
    if (Date.now() > again) throw new Error('no second fetch')
    await new Promise((r) => setImmediate(r))
  }
  t.equal(asked, 2, 'a new fetch after cache_ttl')
  t.same(errors, [], 'the responses verified')
})

t.test('stapling with the responder down: the listener stays off, and one fetch at a time', async (t) => {
  const held: import('node:net').Socket[] = []
  const blackhole = createNetServer((s) => held.push(s))
  await new Promise<void>((r) => blackhole.listen(0, '127.0.0.1', r))
  t.teardown(() => {
    for (const s of held) s.destroy()
    blackhole.close()
  })
  const port = (blackhole.address() as AddressInfo).port
  const ca = new OpensslCa('Stapling Down CA')
  t.teardown(() => ca.cleanup())
  const leaf = ca.issue('down.test', ['basicConstraints = CA:FALSE', 'extendedKeyUsage = serverAuth', `authorityInfoAccess = OCSP;URI:http://127.0.0.1:${port}/`])
  const bare = ca.issue('bare.test', ['basicConstraints = CA:FALSE', 'extendedKeyUsage = serverAuth'])
  let now = Date.now()
  const server = createTlsServer({})
  const errors: string[] = []
  const stapling = enableStapling(server, { skip_verify: false, cache_ttl: 60 }, [leaf.cert + ca.self.cert, bare.cert], (why) => errors.push(why), () => now)
  t.match(errors, [/not followed by its issuer/], 'a certificate without its issuer is said so, and not fetched for')
  const deadline = Date.now() + 10_000
  while (held.length === 0) {
    if (Date.now() > deadline) throw new Error('no fetch reached the responder')
    await new Promise((r) => setImmediate(r))
  }
  for (let i = 0; i < 100; i++) stapling.poke()
  t.equal(server.listenerCount('OCSPRequest'), 0, 'nothing to staple: no listener, so Node never pauses a handshake for it')
  t.equal(held.length, 1, 'one fetch while it hangs, however many connections poke')
})
