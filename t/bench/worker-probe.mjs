// What an HTTP/2 latency tail is made of, measured inside the gateway's workers (bench row 7).
//
//   BENCH_PROBE=/tmp/probe BENCH_NODE_ARGS="--import $PWD/t/bench/worker-probe.mjs" \
//     bin/with-node node t/bench/run.mjs --only=7 --quick
//   bin/with-node node t/bench/worker-probe.mjs /tmp/probe
//
// Loaded with --import (cluster workers inherit it), each worker appends one JSON line a second
// to $BENCH_PROBE/<pid>.jsonl: every HTTP/2 stream's start and close (diagnostics_channel
// http2.server.stream.start → http2.server.stream.close) with its session's number, every GC
// (PerformanceObserver 'gc': start, duration, kind), and the main thread's CPU time and run-queue
// wait (/proc/self/task/<pid>/schedstat: runnable but not running). Run as a script, it
// summarises each worker's streams (the first second of each h2load run left out): p50/p99, how much
// of the p99 tail's time was GC, how many tail streams sat in 5-ms windows whose median stream
// was itself slow (worker-wide stalls rather than some streams served unfairly), the p99 of the
// streams no GC touched, and the run-queue wait per ms of CPU. Measurement only: it allocates
// per stream, so compare variants that all load it.
import { appendFileSync, readFileSync, readdirSync } from 'node:fs'
import { join } from 'node:path'

const dir = process.env.BENCH_PROBE
const cluster = (await import('node:cluster')).default

if (dir && cluster.isWorker) {
  const dc = (await import('node:diagnostics_channel')).default
  const { PerformanceObserver, performance } = await import('node:perf_hooks')
  const origin = performance.timeOrigin
  const started = Symbol('probe start')
  const sessions = new WeakMap()
  let nextSession = 0
  const sessionNo = (s) => {
    let n = sessions.get(s)
    if (n === undefined) sessions.set(s, (n = nextSession++))
    return n
  }
  let streams = []
  let gcs = []
  dc.subscribe('http2.server.stream.start', ({ stream }) => (stream[started] = performance.now()))
  dc.subscribe('http2.server.stream.close', ({ stream }) => {
    if (stream[started] !== undefined) streams.push(stream[started] + origin, performance.now() + origin, sessionNo(stream.session))
  })
  new PerformanceObserver((list) => {
    for (const e of list.getEntries()) gcs.push(e.startTime + origin, e.duration, e.detail?.kind ?? 0)
  }).observe({ entryTypes: ['gc'] })
  const sched = () => readFileSync(`/proc/self/task/${process.pid}/schedstat`, 'utf8').split(' ').map(Number)
  let last = sched()
  setInterval(() => {
    const now = sched()
    const [runMs, waitMs] = [(now[0] - last[0]) / 1e6, (now[1] - last[1]) / 1e6]
    last = now
    if (streams.length) appendFileSync(join(dir, `${process.pid}.jsonl`), JSON.stringify({ streams, gcs, runMs, waitMs }) + '\n')
    streams = []
    gcs = []
  }, 1000).unref()
}

/** One worker's file: its streams (each run's first second left out) and what made their tail. */
function summarise(file) {
  const streams = []
  const gcs = []
  let run = 0
  let wait = 0
  for (const line of readFileSync(file, 'utf8').trim().split('\n')) {
    const j = JSON.parse(line)
    for (let i = 0; i < j.streams.length; i += 3) streams.push({ start: j.streams[i], end: j.streams[i + 1], session: j.streams[i + 2] })
    for (let i = 0; i < j.gcs.length; i += 3) gcs.push({ start: j.gcs[i], end: j.gcs[i] + j.gcs[i + 1], minor: j.gcs[i + 2] === 1 })
    run += j.runMs
    wait += j.waitMs
  }
  // each h2load run is a burst of streams: its first second (connections, cold code) is left out
  streams.sort((a, b) => a.start - b.start)
  let burst = -Infinity
  const mine = streams.filter((s, i) => {
    if (i === 0 || s.start - streams[i - 1].start > 1000) burst = s.start
    return s.start >= burst + 1000
  })
  const ms = (s) => s.end - s.start
  const sorted = mine.map(ms).sort((a, b) => a - b)
  const q = (xs, p) => xs[Math.min(xs.length - 1, Math.floor(p * xs.length))]
  const p99 = q(sorted, 0.99)
  const gcIn = (s, minor) => gcs.reduce((t, g) => t + (minor !== undefined && g.minor !== minor ? 0 : Math.max(0, Math.min(s.end, g.end) - Math.max(s.start, g.start))), 0)
  const tail = mine.filter((s) => ms(s) >= p99)
  const windows = new Map()
  for (const s of mine) {
    const w = Math.floor(s.start / 5)
    if (!windows.has(w)) windows.set(w, [])
    windows.get(w).push(ms(s))
  }
  const medianOf = (w) => q(windows.get(w).sort((a, b) => a - b), 0.5)
  const pct = (n, d) => `${((100 * n) / Math.max(1, d)).toFixed(0)}%`
  const clean = mine.filter((s) => gcIn(s) === 0).map(ms).sort((a, b) => a - b)
  return [
    `${mine.length} streams (${new Set(mine.map((s) => s.session)).size} sessions), p50 ${q(sorted, 0.5).toFixed(2)} ms, p99 ${p99.toFixed(2)} ms`,
    `  p99 tail: GC ${pct(tail.reduce((t, s) => t + gcIn(s), 0), tail.reduce((t, s) => t + ms(s), 0))} of its time; ${pct(tail.filter((s) => gcIn(s, false) > 0).length, tail.length)} overlap a mark-compact, ${pct(tail.filter((s) => gcIn(s, true) > 0).length, tail.length)} a scavenge; ${pct(tail.filter((s) => medianOf(Math.floor(s.start / 5)) >= p99 / 2).length, tail.length)} in 5-ms windows whose median stream is ≥ p99/2`,
    `  streams no GC touched: p99 ${q(clean, 0.99)?.toFixed(2)} ms; main thread (whole run): ${(run / Math.max(1, streams.length) * 1000).toFixed(0)} µs CPU per stream, run-queue wait ${(wait / Math.max(1, run)).toFixed(2)} ms per ms of CPU`,
  ].join('\n')
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const at = process.argv[2]
  if (!at) throw new Error('usage: node t/bench/worker-probe.mjs DIR')
  for (const f of readdirSync(at).filter((f) => f.endsWith('.jsonl'))) console.log(`worker ${f.replace('.jsonl', '')}: ${summarise(join(at, f))}`)
}
