import { readdirSync, readFileSync } from 'node:fs'

/** The pids whose parent is `pid` (a gateway primary's data-plane workers), sorted. */
export function childrenOf(pid: number): number[] {
  const out: number[] = []
  for (const e of readdirSync('/proc')) {
    if (!/^\d+$/.test(e)) continue
    try {
      const stat = readFileSync(`/proc/${e}/stat`, 'utf8')
      // the fields after "(comm)": state, then ppid
      if (Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]) === pid) out.push(Number(e))
    } catch {
      // the process exited while we listed /proc
    }
  }
  return out.sort((a, b) => a - b)
}

/** VmRSS of one process in KiB (0 when it is gone). */
export function rssKiB(pid: number): number {
  try {
    const m = /^VmRSS:\s+(\d+) kB$/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))
    return m ? Number(m[1]) : 0
  } catch {
    return 0
  }
}

/** VmRSS of `pid` and its direct children, in KiB, with the per-process figures. */
export function treeRss(pid: number): { totalKiB: number; byPid: Record<number, number> } {
  const byPid: Record<number, number> = {}
  for (const p of [pid, ...childrenOf(pid)]) byPid[p] = rssKiB(p)
  return { totalKiB: Object.values(byPid).reduce((a, b) => a + b, 0), byPid }
}
