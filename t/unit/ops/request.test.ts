import t from 'tap'
import { isoTime } from '../../../core/ops/request.js'

t.test("isoTime is Date's toISOString (the access log's time, its second cached)", async (t) => {
  let checked = 0
  // within a second, across seconds (the cache moves), before 1970, and the last instant ISO writes with four digits
  for (const start of [0, 999, 1_765_152_000_123, -1_001, 253_402_300_799_000, 1.5]) {
    for (let d = 0; d < 2_500; d += 7) {
      const ms = start + d
      if (isoTime(ms) !== new Date(ms).toISOString()) t.fail(`${ms}: ${isoTime(ms)} against ${new Date(ms).toISOString()}`)
      checked++
    }
  }
  t.equal(isoTime(253_402_300_800_000), new Date(253_402_300_800_000).toISOString(), 'a year past 9999 (six digits and a sign) too')
  t.ok(checked > 2_000, `${checked} instants compared`)
})
