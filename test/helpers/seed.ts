import { createHash } from 'node:crypto'
import { createServer, type Server } from 'node:http'
import { gzipSync } from 'node:zlib'
import type { AddressInfo } from 'node:net'

/** The seed's fifteen pages, served from loopback with sizes in the seed's range (56-468 KB). */
export const SEED_PAGES = [
  'Portal:Arts', 'Portal:History', 'Portal:Society', 'Portal:Biography', 'Portal:Mathematics',
  'Portal:Technology', 'Portal:Geography', 'Portal:Science', 'Computer_science',
  'Python_(programming_language)', 'Java_(programming_language)', 'PHP', 'Node.js',
  'The_C_Programming_Language', 'Go_(programming_language)'
]

/** Deterministic, poorly compressible bytes for a page, so that any corruption shows. */
export function seedBody (name: string, index: number): Buffer {
  const size = 56_000 + Math.round((index * 412_000) / (SEED_PAGES.length - 1))
  const chunks: Buffer[] = []
  let block = createHash('sha256').update(name).digest()
  let length = 0
  while (length < size) {
    block = createHash('sha256').update(block).digest()
    chunks.push(block)
    length += block.length
  }
  return Buffer.concat(chunks).subarray(0, size)
}

export interface SeedSite {
  server: Server
  urls: string[]
  bodies: Buffer[]
  close(): Promise<void>
}

/** Serves the seed pages; odd pages go gzip-encoded when the client accepts it. */
export async function startSeedSite (): Promise<SeedSite> {
  const bodies = SEED_PAGES.map(seedBody)
  const server = createServer((req, res) => {
    const name = decodeURIComponent((req.url ?? '').replace(/^\/wiki\//, ''))
    const index = SEED_PAGES.indexOf(name)
    const body = bodies[index]
    if (body === undefined) {
      res.writeHead(404).end('not found')
      return
    }
    if (index % 2 === 1 && /gzip/.test(String(req.headers['accept-encoding']))) {
      res.writeHead(200, { 'content-type': 'text/html; charset=UTF-8', 'content-encoding': 'gzip' }).end(gzipSync(body))
      return
    }
    res.writeHead(200, { 'content-type': 'text/html; charset=UTF-8', 'content-length': body.length }).end(body)
  })
  server.keepAliveTimeout = 500
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const { port } = server.address() as AddressInfo
  const urls = SEED_PAGES.map((name) => `http://127.0.0.1:${port}/wiki/${encodeURIComponent(name)}`)
  return {
    server,
    urls,
    bodies,
    close: () => new Promise((resolve) => { server.closeAllConnections(); server.close(() => resolve()) })
  }
}
