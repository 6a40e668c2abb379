// The script node:cluster forks for each data-plane worker.
import { runWorker } from './main.js'

runWorker().catch((err: unknown) => {
  process.send?.({ type: 'fatal', message: err instanceof Error ? err.message : String(err) })
  process.exitCode = 1
})
