import type { ComponentChildren } from 'preact'

/** A labelled form field with the admin's error for it, when the last answer named it. */
export function Field(props: { name: string; label: string; errors: Readonly<Record<string, string>>; children: ComponentChildren }) {
  const err = props.errors[props.name]
  return (
    <div class={`field${err ? ' has-error' : ''}`} data-field={props.name}>
      <label>
        <span>{props.label}</span>
        {props.children}
      </label>
      {err && <p class="error field-error">{err}</p>}
    </div>
  )
}

/** A text area that can also be filled from a PEM file. */
export function PemInput(props: { id: string; value: string; onChange: (v: string) => void; rows?: number }) {
  return (
    <div class="pem">
      <input
        type="file"
        id={`${props.id}-file`}
        accept=".pem,.crt,.cer,.key,.crl,text/plain"
        onChange={async (e) => {
          const f = e.currentTarget.files?.[0]
          if (f) props.onChange(await f.text())
        }}
      />
      <textarea id={props.id} rows={props.rows ?? 4} spellcheck={false} placeholder="-----BEGIN …-----" value={props.value} onInput={(e) => props.onChange(e.currentTarget.value)} />
    </div>
  )
}
