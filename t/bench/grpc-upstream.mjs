// The bench's gRPC upstream (scenario 8): an h2c server that answers every call as a unary gRPC
// method returning an empty message: HEADERS (content-type application/grpc), one 5-byte DATA
// frame (uncompressed, length 0), trailers grpc-status 0. The least a gRPC server does, so the
// row measures the proxies, not a gRPC library.
//
//   node t/bench/grpc-upstream.mjs '{"port":..}'
import { createServer } from 'node:http2'

const o = JSON.parse(process.argv[2] ?? '{}')
const EMPTY = Buffer.alloc(5)
const server = createServer({ settings: { maxConcurrentStreams: 1000 } })
server.on('stream', (stream) => {
  stream.on('error', () => undefined)
  stream.on('data', () => undefined)
  stream.on('end', () => {
    if (stream.destroyed) return
    stream.respond({ ':status': 200, 'content-type': 'application/grpc' }, { waitForTrailers: true })
    stream.on('wantTrailers', () => stream.sendTrailers({ 'grpc-status': '0', 'grpc-message': '' }))
    stream.end(EMPTY)
  })
})
server.listen(o.port, '127.0.0.1')
process.on('SIGTERM', () => process.exit(0))
