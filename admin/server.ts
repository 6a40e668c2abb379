import { createServer } from 'node:http'
import type { Etcd3 } from 'etcd3'
import type { LocalConfig } from '../core/config/local-schema.js'
import type { Logger } from '../core/log.js'
import { GatewayError } from '../core/errors.js'

export interface AdminHandle {
  readonly address: string
  close(): Promise<void>
}

/** Starts the admin API on deployment.admin.admin_listen (placeholder until the admin lands). */
export async function startAdmin(o: { config: LocalConfig; etcd: Etcd3; log: Logger }): Promise<AdminHandle> {
  const { ip, port } = o.config.deployment.admin.admin_listen
  const server = createServer((_req, res) => {
    res.writeHead(404, { 'content-type': 'application/json' })
    res.end('{"error_msg":"not found"}\n')
  })
  await new Promise<void>((resolve, reject) => {
    server.once('error', (err: NodeJS.ErrnoException) =>
      reject(err.code === 'EADDRINUSE' ? new GatewayError('GW_PORT_IN_USE', ['admin', `${ip}:${port}`]) : err),
    )
    server.listen({ host: ip, port }, resolve)
  })
  return { address: `${ip}:${port}`, close: () => new Promise((r) => server.close(() => r())) }
}
