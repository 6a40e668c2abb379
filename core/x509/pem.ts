/**
 * The one PEM reader of the project: every module that takes certificates, CRLs or keys as PEM
 * text finds its blocks here. Linear on any input (indexOf scans, no backtracking regex), and
 * never throws: what is wrong is said in the result.
 */

/** One `-----BEGIN LABEL-----` … `-----END LABEL-----` block. */
export interface PemBlock {
  /** the label (`CERTIFICATE`, `X509 CRL`, …) */
  readonly label: string
  /** the whole block, markers included */
  readonly text: string
  /** the text between the markers (base64 with line breaks, not yet decoded) */
  readonly body: string
}

const BEGIN = '-----BEGIN '
const DASHES = '-----'

/**
 * Every block of `text` in order; text around the blocks is ignored. A block whose END line is
 * missing, or names another label, ends the list and is reported as `unterminated`.
 */
export function pemBlocks(text: string): { readonly blocks: PemBlock[]; readonly unterminated: string | undefined } {
  const blocks: PemBlock[] = []
  let from = 0
  for (;;) {
    const start = text.indexOf(BEGIN, from)
    if (start < 0) return { blocks, unterminated: undefined }
    const labelEnd = text.indexOf(DASHES, start + BEGIN.length)
    if (labelEnd < 0) return { blocks, unterminated: '' }
    const label = text.slice(start + BEGIN.length, labelEnd)
    const endLine = `-----END ${label}-----`
    const end = text.indexOf(endLine, labelEnd + DASHES.length)
    if (end < 0 || /-----BEGIN /.test(text.slice(labelEnd, end))) return { blocks, unterminated: label }
    from = end + endLine.length
    blocks.push({ label, text: text.slice(start, from), body: text.slice(labelEnd + DASHES.length, end) })
  }
}

/** The blocks of `text` with `label` (other labels skipped), in order. */
export function pemBlocksOf(text: string, label: string): PemBlock[] {
  return pemBlocks(text).blocks.filter((b) => b.label === label)
}

/** Every `CERTIFICATE` block's text, in order (a CA bundle may hold several). */
export const certBlocks = (text: string): string[] => pemBlocksOf(text, 'CERTIFICATE').map((b) => b.text)

const B64 = /^[A-Za-z0-9+/]*={0,2}$/

/** A block's DER bytes, or a message when its body is not base64. */
export function blockDer(block: PemBlock): Buffer | string {
  const body = block.body.replace(/\s+/g, '')
  if (!B64.test(body)) return `the ${block.label} block's body is not base64`
  return Buffer.from(body, 'base64')
}

/** A DER value as PEM the way OpenSSL writes it: 64-column base64, each line ending in `\n`. */
export function toPem(der: Uint8Array, label = 'CERTIFICATE'): string {
  const b64 = Buffer.from(der.buffer, der.byteOffset, der.byteLength).toString('base64')
  let body = ''
  for (let i = 0; i < b64.length; i += 64) body += `${b64.slice(i, i + 64)}\n`
  return `-----BEGIN ${label}-----\n${body}-----END ${label}-----\n`
}
