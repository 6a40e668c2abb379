/** The GOAWAY code an abusive session gets for each error Node's HTTP/2 binding reports (core/server/h2.ts goawayCodeFor). */
import t from 'tap'
import { constants } from 'node:http2'
import { goawayCodeFor } from '../../../core/server/h2.js'

t.test('floods and Node’s own counters: ENHANCE_YOUR_CALM', async (t) => {
  for (const errno of [-904, -905, -537, -527]) t.equal(goawayCodeFor({ code: 'ERR_HTTP2_ERROR', errno }), constants.NGHTTP2_ENHANCE_YOUR_CALM, `nghttp2 ${errno}`)
  for (const code of ['ERR_HTTP2_TOO_MANY_INVALID_FRAMES', 'ERR_HTTP2_TOO_MANY_CUSTOM_SETTINGS']) t.equal(goawayCodeFor({ code, errno: -902 }), constants.NGHTTP2_ENHANCE_YOUR_CALM, code)
})

t.test('protocol faults: the code RFC 9113 names', async (t) => {
  t.equal(goawayCodeFor({ code: 'ERR_HTTP2_ERROR', errno: -523 }), constants.NGHTTP2_COMPRESSION_ERROR, 'a header block that does not decode')
  t.equal(goawayCodeFor({ code: 'ERR_HTTP2_ERROR', errno: -522 }), constants.NGHTTP2_FRAME_SIZE_ERROR, 'a frame of the wrong size')
  t.equal(goawayCodeFor({ code: 'ERR_HTTP2_ERROR', errno: -524 }), constants.NGHTTP2_FLOW_CONTROL_ERROR, 'a flow-control violation')
  for (const errno of [-505, -506, -518, -531, -532, -536, -903]) t.equal(goawayCodeFor({ code: 'ERR_HTTP2_ERROR', errno }), constants.NGHTTP2_PROTOCOL_ERROR, `nghttp2 ${errno}`)
})

t.test('no fault of the peer’s (out of memory, a callback failure of ours): INTERNAL_ERROR', async (t) => {
  for (const errno of [-901, -902, -900]) t.equal(goawayCodeFor({ code: 'ERR_HTTP2_ERROR', errno }), constants.NGHTTP2_INTERNAL_ERROR, `nghttp2 ${errno}`)
})
