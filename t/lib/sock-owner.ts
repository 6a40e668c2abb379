import { readdirSync, readFileSync, readlinkSync } from 'node:fs'

/** The socket inodes among `pid`'s open file descriptors (empty when the process is gone). */
export function socketInodes(pid: number): Set<string> {
  const out = new Set<string>()
  let fds: string[]
  try {
    fds = readdirSync(`/proc/${pid}/fd`)
  } catch {
    return out
  }
  for (const fd of fds) {
    try {
      const m = /^socket:\[(\d+)\]$/.exec(readlinkSync(`/proc/${pid}/fd/${fd}`))
      if (m?.[1]) out.add(m[1])
    } catch {
      // the descriptor was closed while we listed it
    }
  }
  return out
}

/**
 * The TCP sockets whose local port is `localPort`, from /proc/net/tcp and tcp6: inode → remote
 * port. For a server's port these are its accepted connections, keyed by the client's own port.
 */
export function acceptedByInode(localPort: number): Map<string, number> {
  const out = new Map<string, number>()
  for (const file of ['/proc/net/tcp', '/proc/net/tcp6']) {
    let text: string
    try {
      text = readFileSync(file, 'utf8')
    } catch {
      continue
    }
    for (const line of text.split('\n').slice(1)) {
      // sl local_address rem_address st tx_queue:rx_queue tr:tm->when retrnsmt uid timeout inode …
      const f = line.trim().split(/\s+/)
      const [local, remote, inode] = [f[1], f[2], f[9]]
      if (!local || !remote || !inode || inode === '0') continue
      if (parseInt(local.slice(local.lastIndexOf(':') + 1), 16) !== localPort) continue
      out.set(inode, parseInt(remote.slice(remote.lastIndexOf(':') + 1), 16))
    }
  }
  return out
}

/**
 * Which of `pids` holds the server end of each connection to `serverPort`: client port → pid
 * (Linux /proc only). A client port missing from the map is owned by none of them.
 */
export function connectionOwners(pids: readonly number[], serverPort: number): Map<number, number> {
  const accepted = acceptedByInode(serverPort)
  const out = new Map<number, number>()
  for (const pid of pids) {
    for (const inode of socketInodes(pid)) {
      const clientPort = accepted.get(inode)
      if (clientPort !== undefined) out.set(clientPort, pid)
    }
  }
  return out
}
