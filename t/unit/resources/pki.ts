import { createRequire } from 'node:module'
import type * as Forge from 'node-forge'

const forge = createRequire(import.meta.url)('node-forge') as typeof Forge

/** A PEM certificate and its key. */
export interface Pair {
  readonly cert: string
  readonly key: string
}

const DAY = 86_400_000
let serial = 1

function issue(o: {
  cn: string
  sans?: readonly string[]
  ca?: boolean
  issuer?: { cert: Forge.pki.Certificate; key: Forge.pki.rsa.PrivateKey }
  from: number
  to: number
}): { pair: Pair; cert: Forge.pki.Certificate; key: Forge.pki.rsa.PrivateKey } {
  const keys = forge.pki.rsa.generateKeyPair({ bits: 2048 })
  const cert = forge.pki.createCertificate()
  cert.publicKey = keys.publicKey
  cert.serialNumber = (serial++).toString(16).padStart(4, '0')
  cert.validity.notBefore = new Date(o.from)
  cert.validity.notAfter = new Date(o.to)
  const subject = [{ name: 'commonName', value: o.cn }]
  cert.setSubject(subject)
  cert.setIssuer(o.issuer ? o.issuer.cert.subject.attributes : subject)
  const ext: object[] = [{ name: 'basicConstraints', cA: o.ca ?? false }]
  if (o.sans) ext.push({ name: 'subjectAltName', altNames: o.sans.map((value) => ({ type: 2, value })) })
  cert.setExtensions(ext)
  cert.sign(o.issuer?.key ?? keys.privateKey, forge.md.sha256.create())
  return { pair: { cert: forge.pki.certificateToPem(cert), key: forge.pki.privateKeyToPem(keys.privateKey) }, cert, key: keys.privateKey }
}

/** A CA (valid ten years) and a factory for leaves it signs, relative to `now`. */
export function makeTestPki(now = Date.now()) {
  const ca = issue({ cn: 'Test CA', ca: true, from: now - DAY, to: now + 3650 * DAY })
  const leaf = (cn: string, sans: readonly string[], o: { days?: number; fromDays?: number } = {}): Pair =>
    issue({ cn, sans, issuer: ca, from: now - (o.fromDays ?? 1) * DAY, to: now + (o.days ?? 365) * DAY }).pair
  return { ca: ca.pair, leaf }
}
