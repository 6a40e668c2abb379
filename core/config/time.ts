/**
 * Milliseconds of an nginx time value as APISIX's `worker_shutdown_timeout` (and `http.*_timeout`)
 * take it: a number (seconds) or a string `N`, `Nms`, `Ns`, `Nm` (the schema refuses other forms).
 */
export function nginxTimeMs(v: string | number): number {
  if (typeof v === 'number') return Math.round(v * 1000)
  const m = /^(\d+)(ms|s|m)?$/.exec(v)
  if (!m) return Number.NaN
  const n = Number(m[1])
  return m[2] === 'ms' ? n : m[2] === 'm' ? n * 60_000 : n * 1000
}
