import { render } from 'preact'
import { useEffect, useState } from 'preact/hooks'
import { api, ApiError, forgetKey, savedKey, saveKey } from './api.js'
import { CertificatesPage } from './certs.js'
import { ExpiryPage } from './expiry.js'
import { LiveTlsPage } from './live.js'
import { ExplainPage } from './explain.js'
import { ResourcesPage } from './resources.js'

type Role = 'admin' | 'viewer'

const PAGES = [
  ['certificates', 'Certificates'],
  ['expiry', 'Expiry timeline'],
  ['tls', 'Live TLS'],
  ['explain', 'Explain'],
  ['resources', 'Routes & co'],
] as const
type Page = (typeof PAGES)[number][0]

const pageOf = (hash: string): Page => (PAGES.find(([p]) => `#${p}` === hash)?.[0] ?? 'certificates')

function Login(props: { onRole: (r: Role) => void; error: string | undefined }) {
  const [key, setKey] = useState('')
  const [error, setError] = useState(props.error)
  const submit = async (e: Event) => {
    e.preventDefault()
    saveKey(key)
    try {
      const r = await api<{ role: Role }>('GET', 'ui/whoami')
      props.onRole(r.role)
    } catch (err) {
      forgetKey()
      setError(err instanceof ApiError ? err.message : String(err))
    }
  }
  return (
    <form class="login" onSubmit={submit}>
      <h1>APISIX TLS gateway</h1>
      <label>
        Admin or viewer key
        <input id="login-key" type="password" autocomplete="off" value={key} onInput={(e) => setKey(e.currentTarget.value)} />
      </label>
      <button id="login-submit" type="submit">Log in</button>
      {error && <p class="error">{error}</p>}
    </form>
  )
}

function App() {
  const [role, setRole] = useState<Role | undefined>(undefined)
  const [checked, setChecked] = useState(false)
  const [page, setPage] = useState<Page>(pageOf(location.hash))
  useEffect(() => {
    const on = () => setPage(pageOf(location.hash))
    addEventListener('hashchange', on)
    return () => removeEventListener('hashchange', on)
  }, [])
  useEffect(() => {
    if (!savedKey()) return setChecked(true)
    api<{ role: Role }>('GET', 'ui/whoami').then(
      (r) => {
        setRole(r.role)
        setChecked(true)
      },
      () => {
        forgetKey()
        setChecked(true)
      },
    )
  }, [])
  if (!checked) return null
  if (!role) return <Login onRole={setRole} error={undefined} />
  const canWrite = role === 'admin'
  return (
    <div class={`shell role-${role}`}>
      <nav>
        <span class="brand">APISIX TLS gateway</span>
        {PAGES.map(([p, label]) => (
          <a href={`#${p}`} class={p === page ? 'active' : ''} id={`nav-${p}`}>
            {label}
          </a>
        ))}
        <span class="who" id="role">
          {role}
        </span>
        <button
          class="link"
          onClick={() => {
            forgetKey()
            setRole(undefined)
          }}
        >
          Log out
        </button>
      </nav>
      <main>
        {page === 'certificates' && <CertificatesPage canWrite={canWrite} />}
        {page === 'expiry' && <ExpiryPage />}
        {page === 'tls' && <LiveTlsPage />}
        {page === 'explain' && <ExplainPage />}
        {page === 'resources' && <ResourcesPage canWrite={canWrite} />}
      </main>
    </div>
  )
}

render(<App />, document.getElementById('app')!)
