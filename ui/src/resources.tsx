import { useEffect, useState } from 'preact/hooks'
import { api, ApiError } from './api.js'

const RESOURCES = ['routes', 'upstreams', 'consumers', 'global_rules'] as const
type Res = (typeof RESOURCES)[number]

interface Item {
  readonly key: string
  readonly value: Record<string, unknown>
}

const idOf = (it: Item): string => it.key.split('/').pop() ?? ''
const summary = (v: Record<string, unknown>): string => {
  const s = v['name'] ?? v['username'] ?? v['uri'] ?? v['uris'] ?? ''
  return typeof s === 'string' ? s : JSON.stringify(s)
}
/** `labels` as `key=value` pairs, for display (as text, like everything else). */
const labelsOf = (v: Record<string, unknown>): string => {
  const l = v['labels']
  return l && typeof l === 'object' ? Object.entries(l as Record<string, unknown>).map(([k, x]) => `${k}=${String(x)}`).join(' ') : ''
}

/** Without the fields the admin sets itself: what a user edits. */
const editable = (v: Record<string, unknown>): Record<string, unknown> => {
  const { id: _id, create_time: _c, update_time: _u, ...rest } = v
  return rest
}

function Editor(props: { res: Res; id: string; value: Record<string, unknown> | undefined; canWrite: boolean; onDone: () => void }) {
  const [id, setId] = useState(props.id)
  const [text, setText] = useState(JSON.stringify(props.value ?? {}, null, 2))
  const [error, setError] = useState('')
  const [warning, setWarning] = useState('')
  const save = async () => {
    let body: unknown
    try {
      body = JSON.parse(text)
    } catch (e) {
      return setError(`not JSON: ${e instanceof Error ? e.message : String(e)}`)
    }
    try {
      const path = props.res === 'consumers' ? 'consumers' : `${props.res}/${encodeURIComponent(id)}`
      const r = await api<{ warning?: string }>('PUT', path, body)
      setError('')
      setWarning(r.warning ?? '')
      props.onDone()
    } catch (e) {
      setError(e instanceof ApiError ? e.message : String(e))
    }
  }
  return (
    <div class="card editor" id="json-editor">
      {props.res !== 'consumers' && (
        <label>
          Id <input id="editor-id" value={id} readOnly={!props.canWrite || props.id !== ''} onInput={(e) => setId(e.currentTarget.value)} />
        </label>
      )}
      <textarea id="editor-json" rows={18} spellcheck={false} readOnly={!props.canWrite} value={text} onInput={(e) => setText(e.currentTarget.value)} />
      {error && (
        <p class="error" id="editor-error">
          {error}
        </p>
      )}
      {warning && <p class="warning">{warning}</p>}
      {props.canWrite && (
        <button id="editor-save" onClick={save}>
          Save
        </button>
      )}
    </div>
  )
}

/** Routes, upstreams, consumers and global rules: a list and a JSON editor showing the admin's validation errors. */
export function ResourcesPage(props: { canWrite: boolean }) {
  const [res, setRes] = useState<Res>('routes')
  const [items, setItems] = useState<readonly Item[]>([])
  const [open, setOpen] = useState<{ id: string; value: Record<string, unknown> | undefined } | undefined>(undefined)
  const [confirm, setConfirm] = useState('')
  const [error, setError] = useState('')
  const load = () =>
    api<{ list: Item[] }>('GET', res).then(
      (r) => setItems(r.list),
      (e: unknown) => setError(e instanceof Error ? e.message : String(e)),
    )
  useEffect(() => {
    setOpen(undefined)
    void load()
  }, [res])
  const del = async (id: string) => {
    try {
      await api('DELETE', `${res}/${encodeURIComponent(id)}`)
      setConfirm('')
      void load()
    } catch (e) {
      setError(e instanceof Error ? e.message : String(e))
    }
  }
  return (
    <section>
      <h1>Routes, upstreams, consumers, global rules</h1>
      <div class="tabs">
        {RESOURCES.map((r) => (
          <button class={r === res ? 'active' : ''} id={`tab-${r}`} onClick={() => setRes(r)}>
            {r}
          </button>
        ))}
      </div>
      {error && <p class="error">{error}</p>}
      <table class="list" id="resource-list">
        <tbody>
          {items.map((it) => (
            <tr data-id={idOf(it)}>
              <td class="id">{idOf(it)}</td>
              <td>{summary(it.value)}</td>
              <td class="desc">{typeof it.value['desc'] === 'string' ? it.value['desc'] : ''}</td>
              <td class="labels">{labelsOf(it.value)}</td>
              <td class="actions">
                <button onClick={() => setOpen({ id: idOf(it), value: editable(it.value) })}>{props.canWrite ? 'Edit' : 'View'}</button>
                {props.canWrite &&
                  (confirm === idOf(it) ? (
                    <span class="confirm">
                      <button class="danger" onClick={() => del(idOf(it))}>
                        Delete {idOf(it)}
                      </button>
                      <button class="link" onClick={() => setConfirm('')}>
                        Keep
                      </button>
                    </span>
                  ) : (
                    <button class="delete" onClick={() => setConfirm(idOf(it))}>
                      Delete
                    </button>
                  ))}
              </td>
            </tr>
          ))}
        </tbody>
      </table>
      {props.canWrite && (
        <button id="new-resource" onClick={() => setOpen({ id: '', value: undefined })}>
          New
        </button>
      )}
      {open && (
        <Editor
          key={`${res}/${open.id}`}
          res={res}
          id={open.id}
          value={open.value}
          canWrite={props.canWrite}
          onDone={() => {
            void load()
          }}
        />
      )}
    </section>
  )
}
