import t from 'tap'
import { checkKeyring, decryptKey, encryptKey, isPlainPem } from '../../../core/resources/key-crypto.js'

const PEM = '-----BEGIN PRIVATE KEY-----\nabc\n-----END PRIVATE KEY-----\n'
// produced with `openssl enc -aes-128-cbc -K <hex qeddd145sfvddff3> -iv <same> -base64 -A`
const OPENSSL_128 = 'VMF7ACvwvQk6t8kvorP2IPwgu5MU6Gzz9+FvCa3l8pSFLhseOwTPToPPn4IJOP6iczVCCpDbKgFhVzqNwYJGnw=='
// aes-256-cbc, key = the 32-byte entry, IV = its first 16 bytes
const K32 = '0123456789abcdef0123456789abcdef'
const OPENSSL_256 = 'taky+cU9tTS7l7RA28czlwGguhnIyMbS/Hx/ZIdP1xKbtD8ifVQ58G4tjS5fHnGuGuv/vNDDTNNFMSO/Ld8SYA=='

t.test('key encryption: APISIX format (AES-CBC, key = IV), byte-identical to openssl', async (t) => {
  t.equal(encryptKey(PEM, ['qeddd145sfvddff3', 'edd1c9f0985e76a2']), OPENSSL_128, '16-byte entry → aes-128-cbc')
  t.equal(encryptKey(PEM, [K32]), OPENSSL_256, '32-byte entry → aes-256-cbc with the first 16 bytes as IV')
})

t.test('key encryption: non-PEM values and an empty keyring pass unchanged', async (t) => {
  t.equal(encryptKey(OPENSSL_128, ['qeddd145sfvddff3']), OPENSSL_128)
  t.equal(encryptKey(PEM, []), PEM)
  t.ok(isPlainPem(PEM))
  t.notOk(isPlainPem(OPENSSL_128))
})

t.test('key decryption: any keyring entry decrypts (rotation), plain PEM passes', async (t) => {
  const cases: Array<[string, string, readonly string[], string | undefined]> = [
    ['first entry', OPENSSL_128, ['qeddd145sfvddff3'], PEM],
    ['second entry after a rotation', OPENSSL_128, ['edd1c9f0985e76a2', 'qeddd145sfvddff3'], PEM],
    ['32-byte entry', OPENSSL_256, [K32], PEM],
    ['plain PEM, empty keyring', PEM, [], PEM],
    ['no entry matches', OPENSSL_128, ['edd1c9f0985e76a2'], undefined],
    ['empty keyring, encrypted value', OPENSSL_128, [], undefined],
    ['not base64', 'not base64 at all!', ['qeddd145sfvddff3'], undefined],
  ]
  for (const [name, value, ring, want] of cases) {
    const r = decryptKey(value, ring)
    if (want === undefined) t.notOk(r.ok, `${name} → refused`)
    else t.same(r, { ok: true, value: want }, `${name} → decrypted`)
  }
})

t.test('keyring: entries must be 16 or 32 bytes', async (t) => {
  t.equal(checkKeyring(['qeddd145sfvddff3', K32]), undefined)
  t.match(checkKeyring(['qeddd145sfvddff3', 'short']), /keyring\[1\]/)
})
