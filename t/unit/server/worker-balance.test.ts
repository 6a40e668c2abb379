import t from 'tap'
import { readSync } from 'node:fs'
import { EventEmitter } from 'node:events'
import type { Socket } from 'node:net'
import { BalanceSlot, BalanceTable, H2_WEIGHT, MIN_GAP, decodeTable, routeTarget, shouldHandOver, workerSlot, type Slot } from '../../../core/server/worker-balance.js'

const slot = (own: number, o: Partial<Slot> = {}): Slot => ({ own, sent: 0, adopted: 0, received: 0, routed: 0, ...o })

t.test('shouldHandOver: only clearly more than the least-loaded serving worker', async (t) => {
  const cases: [string, Slot[], number, boolean][] = [
    ['one worker alone keeps everything', [slot(100)], 0, false],
    ['the other is not serving (starting, draining, dead)', [slot(40), slot(-1)], 0, false],
    ['this worker is not serving', [slot(-1), slot(0)], 0, false],
    [`a gap of ${MIN_GAP} is kept`, [slot(MIN_GAP), slot(0)], 0, false],
    [`a gap of ${MIN_GAP + 1} with few connections is handed over`, [slot(MIN_GAP + 1), slot(0)], 0, true],
    ['18 against 14 (4 apart, an eighth of 32) is kept', [slot(18), slot(14)], 0, false],
    ['19 against 13 is handed over', [slot(19), slot(13)], 0, true],
    ['531 against 469 (a sixteenth of 1000 apart) is kept', [slot(531), slot(469)], 0, false],
    ['532 against 468 is handed over', [slot(532), slot(468)], 0, true],
    ['the least-loaded one is the other side of the table', [slot(3), slot(30), slot(20)], 1, true],
    ['connections the primary sent it but it has not taken count as its load', [slot(10), slot(2, { routed: 6, adopted: 0 })], 0, false],
    ['its own hand-overs on the way to the primary count for the others', [slot(10), slot(2)], 0, true],
    ['… and stop it handing over more once they make up the gap', [slot(10, { sent: 5, received: 0 }), slot(2)], 0, false],
    ['the lower of the other workers decides', [slot(30), slot(29), slot(0)], 0, true],
    ['the least-loaded worker itself never hands over', [slot(0), slot(30), slot(20)], 0, false],
  ]
  for (const [name, table, self, want] of cases) t.equal(shouldHandOver(table, self), want, name)
})

t.test('shouldHandOver: HTTP/2 connections weigh H2_WEIGHT, and 16 of them end 8/8', async (t) => {
  const h2 = (n: number): Slot => slot(n * H2_WEIGHT)
  const cases: [string, Slot[], boolean][] = [
    ['the first HTTP/2 connection on an idle gateway stays (handing it over would only mirror the gap)', [h2(1), h2(0)], false],
    ['8 against 7 HTTP/2 connections: kept', [h2(8), h2(7)], false],
    ['9 against 7 HTTP/2 connections: handed over (the old rule kept up to 10 against 6)', [h2(9), h2(7)], true],
    ['17 against 15 (a sixteenth of 32 apart): kept', [h2(17), h2(15)], false],
    ['18 against 14: handed over', [h2(18), h2(14)], true],
    ['beside 40 HTTP/1.1 connections, one HTTP/2 connection more than the other worker stays', [slot(20 + 2 * H2_WEIGHT), slot(20 + H2_WEIGHT)], false],
  ]
  for (const [name, table, want] of cases) t.equal(shouldHandOver(table, 0, H2_WEIGHT), want, name)
  t.equal(shouldHandOver([slot(9), slot(7)], 0, 1), false, 'an HTTP/1.1 connection at 9 against 7 stays (MIN_GAP)')
})

t.test('routeTarget: the least-loaded other serving worker, else back to the sender', async (t) => {
  t.equal(routeTarget([slot(10), slot(3), slot(5)], 0), 1, 'the lowest count')
  t.equal(routeTarget([slot(10), slot(3, { routed: 4 }), slot(5)], 0), 2, 'pending hand-overs count')
  t.equal(routeTarget([slot(10), slot(-1), slot(50)], 0), 2, 'a worker that does not serve gets nothing')
  t.equal(routeTarget([slot(10), slot(-1)], 0), 0, 'nobody else serves: back to the sender')
  t.equal(routeTarget([slot(0), slot(10)], 1), 0, 'never the sender while another serves, even a busier one')
})

t.test('the table: the primary creates it, workers write their slots, the primary routes by it', async (t) => {
  const table = new BalanceTable(3)
  t.teardown(() => table.close())
  const workers = [0, 1, 2].map((i) => new BalanceSlot(table.fd, i, 3))
  const read = (): Slot[] => {
    const buf = Buffer.alloc(60)
    readSync(table.fd, buf, 0, buf.length, 0)
    return decodeTable(buf, 3)
  }
  t.same(read().map((s) => s.own), [-1, -1, -1], 'a new table: nobody serves')
  workers[0]!.setServing(true)
  workers[1]!.setServing(true)
  // sockets stand in for connections: the slot counts them until their 'close'
  const sockets = Array.from({ length: 14 }, () => new EventEmitter() as unknown as Socket)
  for (const s of sockets.slice(0, 12)) workers[0]!.track(s)
  workers[1]!.track(sockets[12]!)
  t.same(read().map((s) => s.own), [12, 1, -1], 'counts written through; slot 2 still starting')
  t.equal(workers[1]!.handOverIfBusy(sockets[12]!, () => true), false, 'worker 1 (1 against 12) keeps its connection')
  const sent: Socket[] = []
  t.equal(workers[0]!.handOverIfBusy(sockets[11]!, (s) => sent.push(s) > 0), true, 'worker 0 (12 against 1) hands one over')
  t.same(sent, [sockets[11]], 'through the send it was given')
  sockets[11]!.emit('close')
  t.equal(read()[0]!.own, 11, 'a connection handed over is not counted again when its socket object closes')
  t.equal(table.route(0), 1, 'the primary routes it to worker 1')
  workers[1]!.adopt(sockets[13]!)
  t.same(read()[0], { own: 11, sent: 1, adopted: 0, received: 1, routed: 0 }, "worker 0's slot after one hand-over")
  t.same(read()[1], { own: 2, sent: 0, adopted: 1, received: 0, routed: 1 }, "worker 1's slot after adopting it")
  sockets[0]!.emit('close')
  t.equal(read()[0]!.own, 10, 'a tracked connection that closes leaves the count')
  let destroyed = false
  const orphan = Object.assign(new EventEmitter(), { destroy: () => (destroyed = true) }) as unknown as Socket
  workers[0]!.track(orphan)
  t.equal(workers[0]!.handOverIfBusy(orphan, () => false), true, 'with the primary gone a hand-over still leaves this worker')
  t.ok(destroyed, 'and the connection is closed (the client reconnects to a worker that stays)')
  workers[1]!.setServing(false)
  t.equal(read()[1]!.own, -1, 'a draining worker reads as not serving')
  t.equal(workers[0]!.shouldHandOver(), false, 'so nobody hands over to it')
  t.equal(table.route(0), 0, 'and a hand-over still on its way goes back to its sender')
  workers[1]!.setServing(true)
  table.reset(1)
  t.same(read()[1], { own: -1, sent: 0, adopted: 0, received: 0, routed: 0 }, 'a dead worker\'s slot is cleared for its replacement')
})

t.test('weights: an HTTP/2 connection counts H2_WEIGHT from its ClientHello until it closes or goes', async (t) => {
  const table = new BalanceTable(2)
  t.teardown(() => table.close())
  const [a, b] = [0, 1].map((i) => new BalanceSlot(table.fd, i, 2)) as [BalanceSlot, BalanceSlot]
  const read = (): Slot[] => {
    const buf = Buffer.alloc(40)
    readSync(table.fd, buf, 0, buf.length, 0)
    return decodeTable(buf, 2)
  }
  a.setServing(true)
  b.setServing(true)
  const sockets = Array.from({ length: 4 }, () => new EventEmitter() as unknown as Socket)
  for (const s of sockets.slice(0, 3)) a.track(s)
  t.equal(read()[0]!.own, 3, 'accepted: weight 1 each')
  a.weigh(sockets[0]!, H2_WEIGHT)
  a.weigh(sockets[0]!, H2_WEIGHT)
  t.equal(read()[0]!.own, 2 + H2_WEIGHT, 'its ClientHello offered h2: it weighs H2_WEIGHT (once)')
  sockets[0]!.emit('close')
  t.equal(read()[0]!.own, 2, 'it closes: its whole weight leaves')
  a.weigh(sockets[1]!, H2_WEIGHT)
  const sent: [Socket, number][] = []
  t.equal(a.handOverIfBusy(sockets[1]!, (s, w) => sent.push([s, w]) > 0), true, `${1 + H2_WEIGHT} against 0 with a connection of ${H2_WEIGHT}: handed over`)
  t.same(sent, [[sockets[1], H2_WEIGHT]], 'sent with its weight')
  t.same(read()[0], { own: 1, sent: H2_WEIGHT, adopted: 0, received: 0, routed: 0 }, 'its weight left the count and is on its way')
  t.equal(table.route(0, H2_WEIGHT), 1, 'routed to the other worker')
  b.adopt(sockets[3]!, H2_WEIGHT)
  t.same(read()[1], { own: H2_WEIGHT, sent: 0, adopted: H2_WEIGHT, received: 0, routed: H2_WEIGHT }, 'adopted with its weight: nothing left pending')
  t.same(read()[0], { own: 1, sent: H2_WEIGHT, adopted: 0, received: H2_WEIGHT, routed: 0 }, 'the primary counted the weight as received')
  sockets[3]!.emit('close')
  t.equal(read()[1]!.own, 0, 'the adopted connection closes: its weight leaves')
})

t.test('workerSlot: from APISIX_BALANCE=slot/n only', async (t) => {
  t.equal(workerSlot({}), undefined, 'no variable: no balancing')
  t.equal(workerSlot({ APISIX_BALANCE: 'x/2' }), undefined, 'not numbers')
  t.equal(workerSlot({ APISIX_BALANCE: '2/2' }), undefined, 'slot out of range')
  t.ok(workerSlot({ APISIX_BALANCE: '1/2' }) instanceof BalanceSlot, 'slot 1 of 2')
})
