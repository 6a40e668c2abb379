import { generateKeyPairSync, randomBytes, X509Certificate } from 'node:crypto'
import * as forgeNs from 'node-forge'

// node-forge is CommonJS: its namespace arrives under default at run time
const forge = ((forgeNs as unknown as { default?: typeof forgeNs }).default ?? forgeNs) as typeof forgeNs

/** A certificate with its key, in PEM, plus facts tests compare with. */
export interface Issued {
  readonly cert: string
  readonly key: string
  /** upper-case hex as nginx's $ssl_client_serial prints it */
  readonly serialHex: string
  readonly der: Buffer
  readonly x509: X509Certificate
  /** forge objects, for issuing further certificates */
  readonly forgeCert: forgeNs.pki.Certificate
  readonly forgeKey: forgeNs.pki.rsa.PrivateKey
}

export type Attr = { shortName?: string; name?: string; type?: string; value: string }

export interface IssueOptions {
  /** CN, when `subject` is not given */
  cn?: string
  subject?: Attr[]
  /** DNS names (and IPs: entries that parse as IPv4) for subjectAltName */
  sans?: string[]
  serialHex?: string
  notBefore?: Date
  notAfter?: Date
  /** make a CA certificate (basicConstraints cA) */
  ca?: boolean
  /** RSA key size (default 2048) */
  bits?: number
}

const DAY = 86_400_000

function rsaKey(bits: number): { forgeKey: forgeNs.pki.rsa.PrivateKey; pub: forgeNs.pki.rsa.PublicKey; pem: string } {
  const { privateKey } = generateKeyPairSync('rsa', { modulusLength: bits })
  const pem = privateKey.export({ type: 'pkcs1', format: 'pem' }).toString()
  const forgeKey = forge.pki.privateKeyFromPem(pem) as forgeNs.pki.rsa.PrivateKey
  const pub = forge.pki.setRsaPublicKey(forgeKey.n, forgeKey.e)
  return { forgeKey, pub, pem }
}

/** A random positive serial of 8 bytes, upper-case hex. */
const randomSerial = (): string => {
  const b = randomBytes(8)
  b[0] = (b[0] ?? 0) & 0x7f | 0x10
  return b.toString('hex').toUpperCase()
}

/** Issues a certificate signed by `issuer` (self-signed when issuer is undefined). */
export function issue(issuer: Issued | undefined, o: IssueOptions = {}): Issued {
  const k = rsaKey(o.bits ?? 2048)
  const cert = forge.pki.createCertificate()
  cert.publicKey = k.pub
  const serialHex = o.serialHex ?? randomSerial()
  cert.serialNumber = serialHex.toLowerCase()
  cert.validity.notBefore = o.notBefore ?? new Date(Date.now() - DAY)
  cert.validity.notAfter = o.notAfter ?? new Date(Date.now() + 365 * DAY)
  const subject = o.subject ?? [{ shortName: 'CN', value: o.cn ?? 'test' }]
  cert.setSubject(subject as forgeNs.pki.CertificateField[])
  cert.setIssuer(issuer ? issuer.forgeCert.subject.attributes : (subject as forgeNs.pki.CertificateField[]))
  const exts: object[] = [{ name: 'subjectKeyIdentifier' }]
  if (o.ca) {
    exts.push({ name: 'basicConstraints', cA: true, critical: true }, { name: 'keyUsage', keyCertSign: true, cRLSign: true, digitalSignature: true, critical: true })
  } else {
    exts.push({ name: 'basicConstraints', cA: false }, { name: 'keyUsage', digitalSignature: true, keyEncipherment: true }, { name: 'extKeyUsage', serverAuth: true, clientAuth: true })
  }
  if (o.sans?.length) {
    exts.push({ name: 'subjectAltName', altNames: o.sans.map((s) => (/^\d+\.\d+\.\d+\.\d+$/.test(s) ? { type: 7, ip: s } : { type: 2, value: s })) })
  }
  if (issuer) exts.push({ name: 'authorityKeyIdentifier', keyIdentifier: issuer.forgeCert.generateSubjectKeyIdentifier().getBytes() })
  cert.setExtensions(exts)
  cert.sign(issuer ? issuer.forgeKey : k.forgeKey, forge.md.sha256.create())
  const pem = forge.pki.certificateToPem(cert)
  const x509 = new X509Certificate(pem)
  return { cert: pem, key: k.pem, serialHex, der: x509.raw, x509, forgeCert: cert, forgeKey: k.forgeKey }
}

/** A self-signed CA. */
export const makeCa = (cn: string, o: Omit<IssueOptions, 'ca' | 'cn'> = {}): Issued => issue(undefined, { ...o, cn, ca: true })

export interface Pki {
  readonly ca: Issued
  /** server certificates by first name; SANs are all the names given */
  readonly servers: Record<string, Issued>
  /** the first server certificate */
  readonly server: Issued
  readonly clients: Record<string, Issued>
  /** a client certificate from `ca` that expired yesterday */
  readonly expiredClient: Issued
  /** another CA, and a client certificate it issued */
  readonly foreignCa: Issued
  readonly foreignClient: Issued
}

/** A small PKI per test file: a CA, server certificates (SANs), clients, an expired client, a foreign CA. */
export function makePki(o: { servers?: string[][]; server?: string[]; clients?: string[] } = {}): Pki {
  const ca = makeCa('Test Root CA')
  const serverNames = o.servers ?? [o.server ?? ['localhost']]
  const servers: Record<string, Issued> = {}
  for (const names of serverNames) servers[names[0] ?? 'localhost'] = issue(ca, { cn: names[0] ?? 'localhost', sans: names })
  const clients: Record<string, Issued> = {}
  for (const name of o.clients ?? ['alice']) clients[name] = issue(ca, { subject: [{ shortName: 'CN', value: name }, { shortName: 'O', value: 'Test Org' }, { shortName: 'C', value: 'FR' }] })
  const expiredClient = issue(ca, { cn: 'expired', notBefore: new Date(Date.now() - 10 * DAY), notAfter: new Date(Date.now() - DAY) })
  const foreignCa = makeCa('Foreign CA')
  const foreignClient = issue(foreignCa, { cn: 'mallory' })
  const first = Object.values(servers)[0]
  if (!first) throw new Error('makePki: no server')
  return { ca, servers, server: first, clients, expiredClient, foreignCa, foreignClient }
}
