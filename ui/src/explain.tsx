import { useState } from 'preact/hooks'
import { api, ApiError, fieldOf } from './api.js'
import { Field } from './form.js'

/** POST /apisix/admin/explain's answer (CONTRACT.md). */
interface Answer {
  readonly ssl_id: string | null
  readonly handshake: string
  readonly client_cert_requested: boolean
  readonly client_verify: string
  readonly skip_mtls_matched: string | null
  readonly route_id: string | null
  readonly plugins: readonly { name: string; phase: string; result: string; status?: number; key?: string }[]
  readonly status: number | null
  readonly reason: string
}

const FIELDS = ['sni', 'host', 'uri', 'method', 'scheme', 'client_cert', 'remote_addr']

/** The decision trace of one imagined request, from the data plane's own decisions. */
export function ExplainPage() {
  const [sni, setSni] = useState('')
  const [host, setHost] = useState('')
  const [uri, setUri] = useState('/')
  const [method, setMethod] = useState('GET')
  const [scheme, setScheme] = useState('https')
  const [cert, setCert] = useState('')
  const [certName, setCertName] = useState('')
  const [answer, setAnswer] = useState<Answer | undefined>(undefined)
  const [errors, setErrors] = useState<Record<string, string>>({})
  const submit = async (e: Event) => {
    e.preventDefault()
    const body: Record<string, string> = { uri, method, scheme }
    if (sni.trim()) body['sni'] = sni.trim()
    if (host.trim()) body['host'] = host.trim()
    if (cert) body['client_cert'] = cert
    try {
      setAnswer(await api<Answer>('POST', 'explain', body))
      setErrors({})
    } catch (err) {
      const msg = err instanceof ApiError ? err.message : String(err)
      setAnswer(undefined)
      setErrors({ [fieldOf(msg, FIELDS) ?? '_form']: msg })
    }
  }
  const a = answer
  const refusedAtHandshake = a?.handshake.startsWith('refused') ?? false
  const outcome = !a ? '' : refusedAtHandshake ? 'handshake refused' : a.status === null ? 'proxied' : String(a.status)
  return (
    <section>
      <h1>Explain a request</h1>
      <form class="card explain" id="explain-form" onSubmit={submit}>
        {errors['_form'] && <p class="error">{errors['_form']}</p>}
        <div class="cols">
          <Field name="scheme" label="Scheme" errors={errors}>
            <select id="explain-scheme" value={scheme} onChange={(e) => setScheme(e.currentTarget.value)}>
              <option value="https">https</option>
              <option value="http">http</option>
            </select>
          </Field>
          <Field name="sni" label="SNI (empty: none)" errors={errors}>
            <input id="explain-sni" value={sni} onInput={(e) => setSni(e.currentTarget.value)} />
          </Field>
          <Field name="host" label="Host (empty: the SNI)" errors={errors}>
            <input id="explain-host" value={host} onInput={(e) => setHost(e.currentTarget.value)} />
          </Field>
          <Field name="method" label="Method" errors={errors}>
            <input id="explain-method" value={method} onInput={(e) => setMethod(e.currentTarget.value)} />
          </Field>
          <Field name="uri" label="Path and query" errors={errors}>
            <input id="explain-uri" value={uri} onInput={(e) => setUri(e.currentTarget.value)} />
          </Field>
        </div>
        <Field name="client_cert" label="Client certificate (PEM file, leaf first; empty: none)" errors={errors}>
          <input
            id="explain-cert"
            type="file"
            accept=".pem,.crt,.cer"
            onChange={async (e) => {
              const f = e.currentTarget.files?.[0]
              setCert(f ? await f.text() : '')
              setCertName(f?.name ?? '')
            }}
          />
          {certName && (
            <button type="button" class="link" onClick={() => (setCert(''), setCertName(''))}>
              remove {certName}
            </button>
          )}
        </Field>
        <button type="submit" id="explain-submit">
          Explain
        </button>
      </form>
      {a && (
        <div class="card trace" id="explain-result" data-outcome={outcome}>
          <p class={`outcome ${a.status === null && !refusedAtHandshake ? 'pass' : 'refuse'}`} id="explain-outcome">
            {refusedAtHandshake ? 'Handshake refused' : a.status === null ? 'Proxied to the upstream' : `Answered ${a.status} by the gateway`}
          </p>
          <p class="reason" id="explain-reason">
            {a.reason}
          </p>
          <ol class="steps">
            <li>
              TLS: {a.ssl_id === null ? 'no ssl object' : `ssl ${a.ssl_id}`} · handshake {a.handshake}
            </li>
            <li>
              Client certificate: {a.client_cert_requested ? 'asked for' : 'not asked for'} · $ssl_client_verify = {a.client_verify}
            </li>
            <li>Skip list: {a.skip_mtls_matched === null ? 'no pattern matched' : `matched ${a.skip_mtls_matched}`}</li>
            <li>Route: {a.route_id === null ? 'none' : a.route_id}</li>
            {a.plugins.map((p) => (
              <li class={`plugin ${p.result}`}>
                {p.name} ({p.phase}): {p.result}
                {p.status !== undefined ? ` ${p.status}` : ''}
                {p.key ? ` ${p.key}` : ''}
              </li>
            ))}
          </ol>
        </div>
      )}
    </section>
  )
}
