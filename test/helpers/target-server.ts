import diagnostics from 'node:diagnostics_channel'
import { once } from 'node:events'
import http from 'node:http'
import type { AddressInfo, Socket } from 'node:net'
import zlib from 'node:zlib'

/**
 * A local HTTP server for fetcher tests: every misbehaviour a download can meet, on loopback
 * only, on a port the OS picks. Close it with the teardown it registers.
 *
 * Routes (query parameters in brackets):
 * - `/bytes[n, chunked]`: n bytes of "a" (with content-length unless chunked=1)
 * - `/encoded[n, coding]`: n bytes of text encoded as gzip | deflate | deflate-raw | br
 * - `/empty-encoded[coding]`, `/corrupt-encoded[coding]`: an empty / a garbled encoded body
 * - `/gzip-bomb[members]`: members x 16 MiB of zeros as gzip members, ~16 KiB each on the wire
 * - `/slow-headers[ms]`: headers after ms (never, without ms)
 * - `/trickle[every]`: 200 and then one byte every `every` ms, never ending
 * - `/loop`: a redirect to itself
 * - `/chain/N`: N redirects, then 200 "end of chain"
 * - `/redirect[to, code]`: a redirect (302 by default) to `to`, as given
 * - `/status[code]`: that status with a short body
 * - `/flaky[key, fails, code, retryAfter]`: `code` (503) for the first `fails` requests with this
 *   key (Retry-After when given), then 200
 * - `/reset[key, fails]`: destroys the socket without an answer for the first `fails` requests
 *   with this key (every one without `fails`), then 200
 * - `/headers`: the request's headers as JSON
 */

export interface TargetServer {
  /** e.g. `http://127.0.0.1:41234` */
  origin: string
  port: number
  url (path: string): string
  /** Paths requested, in order. */
  requests: string[]
  /** TCP connections accepted so far. */
  connections (): number
  /** How the last gzip bomb ended on the server side. */
  bomb: { started: boolean, finished: boolean, bytesWritten: number }
  /** Bytes sent by `/trickle` so far, over all its requests. */
  trickled: { count: number }
  close (): Promise<void>
}

interface Teardown { teardown (fn: () => unknown): void }

const BOMB_MEMBER_DECODED = 16 * 1024 * 1024
let bombMember: Buffer | undefined
const bodies = new Map<number, Buffer>()

export async function startTargetServer (t: Teardown, opts: { host?: string } = {}): Promise<TargetServer> {
  const host = opts.host ?? '127.0.0.1'
  const counters = new Map<string, number>()
  const requests: string[] = []
  const bomb = { started: false, finished: false, bytesWritten: 0 }
  const trickled = { count: 0 }
  let connections = 0

  const hit = (key: string): number => {
    const n = (counters.get(key) ?? 0) + 1
    counters.set(key, n)
    return n
  }

  const server = http.createServer((req, res) => {
    const u = new URL(req.url ?? '/', 'http://target')
    const q = (name: string): string | null => u.searchParams.get(name)
    const num = (name: string, dflt: number): number => Number(q(name) ?? dflt)
    requests.push(u.pathname + u.search)

    if (u.pathname === '/bytes') {
      const n = num('n', 1024)
      // Cached, so that serving many large bodies does not show up in the client's memory.
      let body = bodies.get(n)
      if (body === undefined) bodies.set(n, body = Buffer.alloc(n, 'a'))
      if (q('chunked') === '1') {
        res.writeHead(200, { 'content-type': 'text/plain' })
        writeChunks(res, body).catch(() => res.destroy())
      } else {
        res.writeHead(200, { 'content-type': 'text/plain', 'content-length': n })
        res.end(body)
      }
      return
    }

    if (u.pathname === '/encoded') {
      const n = num('n', 10_000)
      const plain = Buffer.from('trawl '.repeat(Math.ceil(n / 6)).slice(0, n))
      const coding = q('coding') ?? 'gzip'
      const encoded = coding === 'br'
        ? zlib.brotliCompressSync(plain)
        : coding === 'deflate'
          ? zlib.deflateSync(plain)
          : coding === 'deflate-raw'
            ? zlib.deflateRawSync(plain)
            : zlib.gzipSync(plain)
      res.writeHead(200, { 'content-type': 'text/plain', 'content-encoding': coding === 'deflate-raw' ? 'deflate' : coding })
      res.end(encoded)
      return
    }

    if (u.pathname === '/empty-encoded') {
      res.writeHead(200, { 'content-type': 'text/plain', 'content-encoding': q('coding') ?? 'gzip', 'content-length': 0 }).end()
      return
    }

    if (u.pathname === '/corrupt-encoded') {
      res.writeHead(200, { 'content-type': 'text/plain', 'content-encoding': q('coding') ?? 'gzip' }).end('this is not compressed at all')
      return
    }

    if (u.pathname === '/gzip-bomb') {
      bombMember ??= zlib.gzipSync(Buffer.alloc(BOMB_MEMBER_DECODED), { level: 9 })
      const member = bombMember
      const members = num('members', 1024)
      bomb.started = true
      bomb.finished = false
      bomb.bytesWritten = 0
      res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-encoding': 'gzip' })
      res.on('finish', () => { bomb.finished = true })
      const send = async (): Promise<void> => {
        for (let i = 0; i < members && !res.destroyed; i++) {
          bomb.bytesWritten += member.length
          if (!res.write(member)) await drained(res)
        }
        if (!res.destroyed) res.end()
      }
      send().catch(() => res.destroy())
      return
    }

    if (u.pathname === '/slow-headers') {
      const ms = q('ms')
      if (ms !== null) {
        const timer = setTimeout(() => res.end('late'), Number(ms))
        res.on('close', () => clearTimeout(timer))
      }
      return
    }

    if (u.pathname === '/cut') {
      // Declares `n` bytes, sends `sent` of them, then cuts the connection (or, with
      // `stall=1`, keeps it open without sending more).
      const n = num('n', 2000)
      res.writeHead(200, { 'content-type': 'text/plain', 'content-length': n })
      res.write(Buffer.alloc(num('sent', Math.floor(n / 2)), 'c'), () => {
        if (q('stall') !== '1') setImmediate(() => req.socket.destroy())
      })
      return
    }

    if (u.pathname === '/trickle') {
      res.writeHead(200, { 'content-type': 'text/plain' })
      // Node holds headers back until the first write; the client should see them now.
      res.flushHeaders()
      const timer = setInterval(() => {
        trickled.count++
        res.write('x')
      }, num('every', 50))
      res.on('close', () => clearInterval(timer))
      return
    }

    if (u.pathname === '/loop') {
      res.writeHead(302, { location: '/loop' }).end()
      return
    }

    const chain = /^\/chain\/(\d+)$/.exec(u.pathname)
    if (chain !== null) {
      const left = Number(chain[1])
      if (left === 0) res.writeHead(200, { 'content-type': 'text/plain' }).end('end of chain')
      else res.writeHead(301, { location: `/chain/${left - 1}` }).end()
      return
    }

    if (u.pathname === '/redirect') {
      res.writeHead(num('code', 302), { location: q('to') ?? '/' }).end()
      return
    }

    if (u.pathname === '/status') {
      const code = num('code', 404)
      res.writeHead(code, { 'content-type': 'text/plain' }).end(`status ${code}`)
      return
    }

    if (u.pathname === '/flaky') {
      const n = hit(`flaky:${q('key') ?? ''}`)
      if (n <= num('fails', 1)) {
        const headers: Record<string, string> = { 'content-type': 'text/plain' }
        const retryAfter = q('retryAfter')
        if (retryAfter !== null) headers['retry-after'] = retryAfter
        res.writeHead(num('code', 503), headers).end('try again')
      } else {
        res.writeHead(200, { 'content-type': 'text/plain' }).end(`ok after ${n - 1}`)
      }
      return
    }

    if (u.pathname === '/reset') {
      const n = hit(`reset:${q('key') ?? ''}`)
      const fails = q('fails')
      if (fails === null || n <= Number(fails)) {
        req.socket.destroy()
        return
      }
      res.writeHead(200, { 'content-type': 'text/plain' }).end('ok')
      return
    }

    if (u.pathname === '/headers') {
      res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(req.headers))
      return
    }

    res.writeHead(404, { 'content-type': 'text/plain' }).end('no such route')
  })

  // Short, but not under 3 s: undici keeps a connection only when the server's keep-alive hint
  // (whole seconds) exceeds its 2 s safety margin, so 500 ms would mean a new connection each time.
  server.keepAliveTimeout = 3000
  server.on('connection', () => { connections++ })
  server.listen(0, host)
  await once(server, 'listening')
  const { port } = server.address() as AddressInfo
  const origin = `http://${host.includes(':') ? `[${host}]` : host}:${port}`

  let closed: Promise<void> | undefined
  const close = async (): Promise<void> => {
    closed ??= new Promise<void>((resolve) => {
      server.close(() => resolve())
      server.closeAllConnections()
    })
    return closed
  }
  t.teardown(close)

  return {
    origin,
    port,
    url: (path) => origin + path,
    requests,
    connections: () => connections,
    bomb,
    trickled,
    close
  }
}

async function writeChunks (res: http.ServerResponse, body: Buffer): Promise<void> {
  const size = 64 * 1024
  for (let off = 0; off < body.length && !res.destroyed; off += size) {
    if (!res.write(body.subarray(off, off + size))) await drained(res)
  }
  if (!res.destroyed) res.end()
}

/** Resolves on 'drain' or 'close', whichever comes first, and leaves no listener behind. */
async function drained (res: http.ServerResponse): Promise<void> {
  await new Promise<void>((resolve) => {
    const done = (): void => {
      res.off('drain', done)
      res.off('close', done)
      resolve()
    }
    res.on('drain', done)
    res.on('close', done)
  })
}

/**
 * Records the remote address of every TCP client socket this process connects (http:// only:
 * tls.connect does not go through net.connect), via Node's `net.client.socket` channel. Tests
 * use it to show that a refused address was never connected to, and that nothing but loopback
 * ever was.
 */
export function watchOutboundConnections (t: Teardown): { created: () => number, connectedTo: string[] } {
  let created = 0
  const connectedTo: string[] = []
  const onSocket = (message: unknown): void => {
    const { socket } = message as { socket: Socket }
    created++
    socket.once('connect', () => connectedTo.push(socket.remoteAddress ?? 'unknown'))
  }
  diagnostics.subscribe('net.client.socket', onSocket)
  t.teardown(() => diagnostics.unsubscribe('net.client.socket', onSocket))
  return { created: () => created, connectedTo }
}
