// `npm run bench`: every benchmark, one after the other (a benchmark, not a test: it prints figures).
import { runTlsBench } from './tls.js'
import { runProxyBench } from './proxy.js'

await runTlsBench()
await runProxyBench()
