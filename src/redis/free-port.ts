import { createServer } from 'node:net'

/**
 * A loopback port nothing listens on right now: bound once on 127.0.0.1, then closed. Used for a
 * private redis-server and, in tests and benches, for servers started on a known port or for a
 * port that refuses connections.
 */
export async function freePort (): Promise<number> {
  const server = createServer()
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const address = server.address()
  await new Promise((resolve) => server.close(resolve))
  if (address === null || typeof address === 'string') throw new Error('no port')
  return address.port
}
