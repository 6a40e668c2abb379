import { readFileSync } from 'node:fs'
import { createServer } from 'node:net'

/**
 * The kernel's ephemeral range (ports it picks for bind(0) and for every outgoing connection).
 * A port taken from inside it and released can be handed to any client socket of any test
 * running beside this one before the gateway or etcd binds it (seen in CI: "already in use"
 * 40 s after the pick, with thousands of test connections made meanwhile).
 */
function ephemeralRange(): [number, number] {
  try {
    const [lo, hi] = readFileSync('/proc/sys/net/ipv4/ip_local_port_range', 'utf8').trim().split(/\s+/).map(Number)
    if (lo !== undefined && hi !== undefined && lo > 0 && hi >= lo) return [lo, hi]
  } catch {
    // not Linux: the common default
  }
  return [32768, 60999]
}

const [EPHEMERAL_LO] = ephemeralRange()
/** Ports below the ephemeral range the tests pick from (the kernel never hands these out by itself). */
const PICK_LO = 10_000
const PICK_HI = EPHEMERAL_LO - 1

/** Ports this test process was given already. */
const handedOut = new Set<number>()

/** Whether 127.0.0.1:port can be bound now. */
function bindable(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = createServer()
    s.once('error', () => resolve(false))
    s.listen(port, '127.0.0.1', () => s.close(() => resolve(true)))
  })
}

/** A port the kernel chose (bind to 0), for when there is no room below its ephemeral range. */
function kernelPort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer()
    s.once('error', reject)
    s.listen(0, '127.0.0.1', () => {
      const addr = s.address()
      const port = typeof addr === 'object' && addr ? addr.port : 0
      s.close(() => resolve(port))
    })
  })
}

/**
 * A free TCP port on 127.0.0.1, picked at random below the kernel's ephemeral range and checked
 * by binding it: no client connection can take it before the process under test binds it, and
 * two test files picking at random from about 20,000 ports rarely meet (a gateway that still
 * loses its port is started again, t/lib/gateway.ts).
 */
export async function freePort(): Promise<number> {
  if (PICK_HI - PICK_LO < 1000) return kernelPort()
  for (let i = 0; i < 50; i++) {
    const port = PICK_LO + Math.floor(Math.random() * (PICK_HI - PICK_LO + 1))
    // never the same port twice in one test process (a gateway's four ports are picked in a row)
    if (handedOut.has(port)) continue
    if (await bindable(port)) {
      handedOut.add(port)
      return port
    }
  }
  return kernelPort()
}

