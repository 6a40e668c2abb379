/**
 * Polls `probe` until `ok(value)` holds or `timeoutMs` passes; resolves with the last value.
 * Rejects with `describe()` (e.g. the tail of a process's output) on timeout. Tests never sleep.
 */
export async function eventually<T>(
  probe: () => Promise<T> | T,
  ok: (v: T) => boolean = (v) => Boolean(v),
  o: { timeoutMs?: number; intervalMs?: number; describe?: () => string } = {},
): Promise<T> {
  const deadline = Date.now() + (o.timeoutMs ?? 10_000)
  let last: T | undefined
  let lastErr: unknown
  for (;;) {
    try {
      last = await probe()
      if (ok(last)) return last
    } catch (err) {
      lastErr = err
    }
    if (Date.now() > deadline) {
      const what = lastErr ? `last error: ${String((lastErr as Error).message ?? lastErr)}` : `last value: ${safe(last)}`
      throw new Error(`condition not met within ${o.timeoutMs ?? 10_000} ms (${what})${o.describe ? `\n${o.describe()}` : ''}`)
    }
    await new Promise((r) => setTimeout(r, o.intervalMs ?? 25))
  }
}

/** Waits until `fn` resolves without throwing. */
export const until = (fn: () => Promise<unknown>, timeoutMs = 10_000, describe?: () => string): Promise<unknown> =>
  eventually(fn, () => true, { timeoutMs, ...(describe ? { describe } : {}) })

function safe(v: unknown): string {
  try {
    return JSON.stringify(v)?.slice(0, 300) ?? String(v)
  } catch {
    return String(v)
  }
}

/**
 * A timer of `ms` started now, and whether it has run. Timers of one process run in the order of
 * their deadlines, so an event seen before this one fired came before that bound: a lower bound
 * checked without reading a clock.
 */
export function mark(ms: number): () => boolean {
  let fired = false
  setTimeout(() => (fired = true), ms).unref()
  return () => fired
}
