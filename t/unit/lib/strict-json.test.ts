import t from 'tap'
import { parseStrictJson } from '../../lib/strict-json.js'

// The test helper that judges the gateway's log lines: it must refuse what it is there to catch.
t.test('strict JSON: what JSON.parse reads, the same value', async (t) => {
  for (const s of ['{}', '[]', '{"a":1,"b":[true,false,null,"x\\"y\\u00e9"],"c":{"d":-1.5e3}}', ' "s" ', '0', '{"a":{"a":1}}']) {
    t.same(parseStrictJson(s), JSON.parse(s), s)
  }
})

t.test('strict JSON: a key twice in one object → refused, naming the key', async (t) => {
  t.throws(() => parseStrictJson('{"level":30,"component":"primary","component":"admin"}'), /duplicate key "component"/)
  t.throws(() => parseStrictJson('{"a":{"b":1,"b":2}}'), /duplicate key "b"/)
  t.throws(() => parseStrictJson('{"\\u0061":1,"a":2}'), /duplicate key "a"/, 'keys compared after unescaping')
})

t.test('strict JSON: malformed text → refused', async (t) => {
  for (const s of ['', '{', '{"a":1,}', '[1,]', '{"a" 1}', "{'a':1}", '{"a":1} x', '"\u0001"', 'NaN']) {
    t.throws(() => parseStrictJson(s), SyntaxError, JSON.stringify(s))
  }
})
