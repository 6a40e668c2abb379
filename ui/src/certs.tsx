import { useEffect, useState } from 'preact/hooks'
import { api, ApiError, fieldOf } from './api.js'
import { Field, PemInput } from './form.js'
import { day, daysLeft, urgencyOf, type CertFacts, type CertificatesView, type SslView } from './util.js'

const lines = (s: string): string[] =>
  s
    .split('\n')
    .map((x) => x.trim())
    .filter((x) => x !== '')

/** The client-certificate block a form produces: undefined when no CA was given. */
function clientOf(ca: string, depth: string, skip: string, crl: string): Record<string, unknown> | undefined {
  if (ca.trim() === '') return undefined
  const c: Record<string, unknown> = { ca }
  if (depth.trim() !== '') c['depth'] = Number(depth)
  const s = lines(skip)
  if (s.length > 0) c['skip_mtls_uri_regex'] = s
  if (crl.trim() !== '') c['crl'] = crl
  return c
}

const CLIENT_FIELDS = ['client.ca', 'client.depth', 'client.skip_mtls_uri_regex', 'client.crl']

function Days(props: { notAfter: string }) {
  const d = daysLeft(props.notAfter)
  return (
    <span class={`days ${urgencyOf(d)}`} data-days={d}>
      {d < 0 ? `expired ${-d} d ago` : `${d} d`}
    </span>
  )
}

function AddForm(props: { onDone: () => void }) {
  const [cert, setCert] = useState('')
  const [key, setKey] = useState('')
  const [sans, setSans] = useState<readonly CertFacts[]>([])
  const [snis, setSnis] = useState<Record<string, boolean>>({})
  const [extra, setExtra] = useState('')
  const [id, setId] = useState('')
  const [ca, setCa] = useState('')
  const [depth, setDepth] = useState('')
  const [skip, setSkip] = useState('')
  const [errors, setErrors] = useState<Record<string, string>>({})
  const [warning, setWarning] = useState('')
  const onCert = async (pem: string) => {
    setCert(pem)
    try {
      const r = await api<{ certs: CertFacts[] }>('POST', 'ui/inspect', { cert: pem })
      setSans(r.certs)
      const leaf = r.certs[0]
      setSnis(Object.fromEntries((leaf?.sans ?? []).map((n) => [n, true])))
      setErrors({})
    } catch (e) {
      setSans([])
      setSnis({})
      setErrors({ cert: e instanceof Error ? e.message : String(e) })
    }
  }
  const submit = async (e: Event) => {
    e.preventDefault()
    const names = [...Object.entries(snis).filter(([, on]) => on).map(([n]) => n), ...lines(extra)]
    const client = clientOf(ca, depth, skip, '')
    const body: Record<string, unknown> = { cert, key, snis: names, ...(client ? { client } : {}) }
    try {
      const r = await api<{ warning?: string }>(id.trim() ? 'PUT' : 'POST', id.trim() ? `ssls/${encodeURIComponent(id.trim())}` : 'ssls', body)
      setErrors({})
      setWarning(r.warning ?? '')
      setCert('')
      setKey('')
      setSans([])
      setSnis({})
      setCa('')
      setSkip('')
      setDepth('')
      setId('')
      props.onDone()
    } catch (err) {
      const msg = err instanceof ApiError ? err.message : String(err)
      const f = fieldOf(msg, ['cert', 'key', 'snis', 'id', ...CLIENT_FIELDS]) ?? '_form'
      setErrors({ [f]: msg })
    }
  }
  return (
    <form class="card add-ssl" id="add-ssl" onSubmit={submit}>
      <h2>Add a certificate</h2>
      {errors['_form'] && <p class="error">{errors['_form']}</p>}
      {warning && <p class="warning">{warning}</p>}
      <div class="cols">
        <Field name="cert" label="Certificate (PEM file or pasted; leaf first)" errors={errors}>
          <PemInput id="add-cert" value={cert} onChange={onCert} />
        </Field>
        <Field name="key" label="Private key" errors={errors}>
          <PemInput id="add-key" value={key} onChange={setKey} />
        </Field>
      </div>
      {sans[0] && (
        <p class="facts">
          {sans[0].keyType} · {sans[0].subject} · issued by {sans[0].issuer} · until {day(sans[0].notAfter)}
        </p>
      )}
      <Field name="snis" label="SNIs (from the certificate's SANs)" errors={errors}>
        <div class="sans" id="add-sans">
          {Object.keys(snis).map((n) => (
            <label class="check">
              <input type="checkbox" checked={snis[n]} onChange={(e) => setSnis({ ...snis, [n]: e.currentTarget.checked })} />
              {n}
            </label>
          ))}
          <input id="add-extra-snis" placeholder="more names, one per line" value={extra} onInput={(e) => setExtra(e.currentTarget.value)} />
        </div>
      </Field>
      <Field name="id" label="Id (empty: generated)" errors={errors}>
        <input id="add-id" value={id} onInput={(e) => setId(e.currentTarget.value)} />
      </Field>
      <details>
        <summary>Ask clients for a certificate</summary>
        <Field name="client.ca" label="Client CA (PEM)" errors={errors}>
          <PemInput id="add-ca" value={ca} onChange={setCa} />
        </Field>
        <Field name="client.depth" label="Depth (intermediates allowed)" errors={errors}>
          <input id="add-depth" type="number" min={0} value={depth} onInput={(e) => setDepth(e.currentTarget.value)} />
        </Field>
        <Field name="client.skip_mtls_uri_regex" label="Paths without a certificate (regexes, one per line)" errors={errors}>
          <textarea id="add-skip" rows={2} value={skip} onInput={(e) => setSkip(e.currentTarget.value)} />
        </Field>
      </details>
      <button type="submit" id="add-submit">
        Add
      </button>
    </form>
  )
}

function EditClient(props: { ssl: SslView; onDone: () => void }) {
  const [ca, setCa] = useState('')
  const [depth, setDepth] = useState(String(props.ssl.client?.depth ?? ''))
  const [skip, setSkip] = useState((props.ssl.client?.skip_mtls_uri_regex ?? []).join('\n'))
  const [crl, setCrl] = useState('')
  const [errors, setErrors] = useState<Record<string, string>>({})
  useEffect(() => {
    // the stored CA and CRL (the view holds only their facts)
    void api<{ value: { client?: { ca?: string; crl?: string } } }>('GET', `ssls/${encodeURIComponent(props.ssl.id)}`).then((r) => {
      setCa(r.value.client?.ca ?? '')
      setCrl(r.value.client?.crl ?? '')
    })
  }, [props.ssl.id])
  const submit = async (e: Event) => {
    e.preventDefault()
    const client = clientOf(ca, depth, skip, crl)
    try {
      // a merge patch: null removes the block, and a block without skip_mtls_uri_regex drops the list
      const patch = client ? { client: { skip_mtls_uri_regex: null, crl: null, ...client } } : { client: null }
      await api('PATCH', `ssls/${encodeURIComponent(props.ssl.id)}`, patch)
      props.onDone()
    } catch (err) {
      const msg = err instanceof ApiError ? err.message : String(err)
      setErrors({ [fieldOf(msg, CLIENT_FIELDS) ?? '_form']: msg })
    }
  }
  return (
    <form class="card edit-client" id={`edit-client-${props.ssl.id}`} onSubmit={submit}>
      <h3>Client certificates for {props.ssl.id}</h3>
      {errors['_form'] && <p class="error">{errors['_form']}</p>}
      <Field name="client.ca" label="Client CA (empty: ask for none)" errors={errors}>
        <PemInput id="edit-ca" value={ca} onChange={setCa} />
      </Field>
      <Field name="client.depth" label="Depth" errors={errors}>
        <input id="edit-depth" type="number" value={depth} onInput={(e) => setDepth(e.currentTarget.value)} />
      </Field>
      <Field name="client.skip_mtls_uri_regex" label="Paths without a certificate (regexes, one per line)" errors={errors}>
        <textarea id="edit-skip" rows={3} value={skip} onInput={(e) => setSkip(e.currentTarget.value)} />
      </Field>
      <Field name="client.crl" label="CRLs (PEM)" errors={errors}>
        <PemInput id="edit-crl" value={crl} onChange={setCrl} />
      </Field>
      <button type="submit" id="edit-submit">
        Save
      </button>
      <button type="button" class="link" onClick={props.onDone}>
        Cancel
      </button>
    </form>
  )
}

function Row(props: { ssl: SslView; canWrite: boolean; reload: () => void }) {
  const s = props.ssl
  const [editing, setEditing] = useState(false)
  const [confirming, setConfirming] = useState(false)
  const [error, setError] = useState('')
  const leaf = s.certs[0]
  const soonest = [...s.certs].sort((a, b) => Date.parse(a.notAfter) - Date.parse(b.notAfter))[0]
  const del = async () => {
    try {
      await api('DELETE', `ssls/${encodeURIComponent(s.id)}`)
      props.reload()
    } catch (e) {
      setError(e instanceof Error ? e.message : String(e))
    }
  }
  return (
    <>
      <tr data-ssl={s.id} class={s.status === 0 ? 'disabled' : ''}>
        <td class="id">{s.id}</td>
        <td class="snis">{s.type === 'client' ? <em>client certificate</em> : s.snis.join(', ')}</td>
        <td class="keytypes">{s.certs.map((c) => c.keyType).join(' + ')}</td>
        <td class="issuer">{leaf?.issuer}</td>
        <td class="notafter">{soonest && day(soonest.notAfter)}</td>
        <td>{soonest && <Days notAfter={soonest.notAfter} />}</td>
        <td class="client">
          {s.client ? (
            <dl>
              <dt>CA</dt>
              <dd>{s.client.ca.map((c) => c.subject).join('; ')}</dd>
              <dt>depth</dt>
              <dd>{s.client.depth}</dd>
              <dt>skip</dt>
              <dd class="skip">{s.client.skip_mtls_uri_regex.length ? s.client.skip_mtls_uri_regex.join('  ') : 'none (strict)'}</dd>
              {s.client.crl.map((c) => (
                <>
                  <dt>CRL</dt>
                  <dd>next update {c.nextUpdate ? day(c.nextUpdate) : 'none'}</dd>
                </>
              ))}
            </dl>
          ) : (
            <span class="muted">not asked</span>
          )}
        </td>
        <td class="warnings">
          {s.warnings.map((w) => (
            <p class="warning">{w}</p>
          ))}
        </td>
        <td class="actions">
          {props.canWrite && (
            <>
              <button class="edit" onClick={() => setEditing(!editing)}>
                Client settings
              </button>
              {confirming ? (
                <span class="confirm">
                  Delete {s.id}?{' '}
                  <button class="danger yes" onClick={del}>
                    Delete
                  </button>
                  <button class="link" onClick={() => setConfirming(false)}>
                    Keep
                  </button>
                </span>
              ) : (
                <button class="delete" onClick={() => setConfirming(true)}>
                  Delete
                </button>
              )}
            </>
          )}
          {error && <p class="error">{error}</p>}
        </td>
      </tr>
      {editing && (
        <tr>
          <td colSpan={9}>
            <EditClient
              ssl={s}
              onDone={() => {
                setEditing(false)
                props.reload()
              }}
            />
          </td>
        </tr>
      )}
    </>
  )
}

/** One row per ssl object, the add form, client settings and deletion (admin key only). */
export function CertificatesPage(props: { canWrite: boolean }) {
  const [view, setView] = useState<CertificatesView | undefined>(undefined)
  const [error, setError] = useState('')
  const load = () =>
    api<CertificatesView>('GET', 'ui/certificates').then(
      (v) => {
        setView(v)
        setError('')
      },
      (e: unknown) => setError(e instanceof Error ? e.message : String(e)),
    )
  useEffect(() => void load(), [])
  return (
    <section>
      <h1>Certificates</h1>
      {error && <p class="error">{error}</p>}
      <table class="certs" id="certs">
        <thead>
          <tr>
            <th>Id</th>
            <th>SNIs</th>
            <th>Keys</th>
            <th>Issuer</th>
            <th>Not after</th>
            <th>Days left</th>
            <th>Client certificates</th>
            <th>Warnings</th>
            <th />
          </tr>
        </thead>
        <tbody>
          {view?.ssls.map((s) => (
            <Row key={s.id} ssl={s} canWrite={props.canWrite} reload={load} />
          ))}
        </tbody>
      </table>
      {view && view.ssls.length === 0 && <p class="muted">No ssl objects yet.</p>}
      {props.canWrite && <AddForm onDone={load} />}
    </section>
  )
}
