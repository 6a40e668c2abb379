import { createCipheriv, createDecipheriv } from 'node:crypto'
import { fail, ok, type Result } from '../schema/decode.js'

/**
 * Private keys at rest in APISIX's format (spec §1.5, apisix/ssl.lua): AES-CBC with the keyring
 * entry as key and as IV (the first 16 bytes of a 32-byte entry), PKCS#7, standard base64.
 * Only PEM values (starting with `---`) are encrypted; anything else is stored unchanged.
 */

/** True when the value is a plain PEM (APISIX's test: it starts with `---`). */
export const isPlainPem = (value: string): boolean => value.startsWith('---')

function cipherFor(entry: string): { algo: string; key: Buffer; iv: Buffer } | undefined {
  const key = Buffer.from(entry, 'utf8')
  if (key.length === 16) return { algo: 'aes-128-cbc', key, iv: key }
  if (key.length === 32) return { algo: 'aes-256-cbc', key, iv: key.subarray(0, 16) }
  return undefined
}

/** A message when a keyring entry is not 16 or 32 bytes; undefined when the keyring is usable. */
export function checkKeyring(keyring: readonly string[]): string | undefined {
  const bad = keyring.findIndex((k) => !cipherFor(k))
  return bad < 0 ? undefined : `apisix.data_encryption.keyring[${bad}] must be 16 or 32 bytes long`
}

/** Encrypts a plain PEM with the first keyring entry; other values (and an empty keyring) pass unchanged. */
export function encryptKey(value: string, keyring: readonly string[]): string {
  const first = keyring[0]
  const c = first === undefined ? undefined : cipherFor(first)
  if (!c || !isPlainPem(value)) return value
  const cipher = createCipheriv(c.algo, c.key, c.iv)
  return Buffer.concat([cipher.update(value, 'utf8'), cipher.final()]).toString('base64')
}

/**
 * Decrypts a stored key with the first keyring entry that yields a PEM. A plain PEM is returned
 * unchanged. Stricter than APISIX (which accepts any padding-valid result): the plaintext must
 * look like a PEM, so a wrong key that happens to produce valid padding is not taken.
 */
export function decryptKey(value: string, keyring: readonly string[]): Result<string> {
  if (isPlainPem(value)) return ok(value)
  if (!/^[A-Za-z0-9+/]+={0,2}$/.test(value) || value.length % 4 !== 0) return fail('base64 decode ssl key failed')
  const data = Buffer.from(value, 'base64')
  for (const entry of keyring) {
    const c = cipherFor(entry)
    if (!c) continue
    try {
      const d = createDecipheriv(c.algo, c.key, c.iv)
      const plain = Buffer.concat([d.update(data), d.final()]).toString('utf8')
      if (plain.startsWith('-----BEGIN')) return ok(plain)
    } catch {
      // wrong key: bad padding; try the next entry
    }
  }
  return fail('decrypt ssl key failed')
}
