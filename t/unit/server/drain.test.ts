import t from 'tap'
import { nginxTimeMs } from '../../../core/config/time.js'
import { decodeLocalConfig } from '../../../core/config/local.js'

t.test('worker_shutdown_timeout: nginx time values → milliseconds', async (t) => {
  const cases: [string | number, number][] = [
    ['20s', 20_000],
    ['240s', 240_000],
    ['20', 20_000],
    ['500ms', 500],
    ['1m', 60_000],
    ['0s', 0],
    [3, 3_000],
    [0.25, 250],
  ]
  for (const [v, ms] of cases) t.equal(nginxTimeMs(v), ms, `${JSON.stringify(v)} → ${ms} ms`)
})

t.test('worker_shutdown_timeout: default 20s; other forms refused naming the key', async (t) => {
  t.equal(nginxTimeMs(decodeLocalConfig('x', {}).nginx_config.worker_shutdown_timeout), 20_000)
  for (const bad of ['2h', '1.5s', 's', '-1', '']) {
    t.throws(() => decodeLocalConfig('f', { nginx_config: { worker_shutdown_timeout: bad } }), /nginx_config\.worker_shutdown_timeout/, JSON.stringify(bad))
  }
  t.throws(() => decodeLocalConfig('f', { nginx_config: { worker_shutdown_timeout: -1 } }), /nginx_config\.worker_shutdown_timeout/, '-1')
  t.throws(() => decodeLocalConfig('f', { nginx_config: { worker_processes: 2 } }), /nginx_config\.worker_processes: unknown key/, 'other nginx_config keys stay unknown')
})
