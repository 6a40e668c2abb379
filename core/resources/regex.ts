/**
 * Regex checks for patterns that run on requests (skip_mtls_uri_regex, vars, filters).
 * With `linear`, the pattern must compile on V8's linear-time engine (flag `l`, enabled by the
 * process's --enable-experimental-regexp-engine): lookarounds and backreferences are refused,
 * so no pattern can freeze a worker (CONTRACT.md "Regular expressions").
 */

/** A message when `pattern` does not compile (or, with `linear`, cannot run in linear time). */
export function checkPattern(pattern: string, linear: boolean, flags = ''): string | undefined {
  try {
    new RegExp(pattern, flags)
    // V8's linear engine refuses the `i` flag itself, so linearity is judged on the bare pattern
    if (linear) new RegExp(pattern, 'l')
    return undefined
  } catch (err) {
    const msg = err instanceof Error ? err.message : String(err)
    if (linear && /Invalid flags/.test(msg)) return 'the linear-time regexp engine is not enabled in this process'
    return msg
  }
}

/** Compiles a pattern with the linear-time engine when it is available, else undefined on failure. */
export function compileLinear(pattern: string, flags = ''): RegExp | undefined {
  try {
    return new RegExp(pattern, `${flags}l`)
  } catch {
    return undefined
  }
}
