/**
 * The benchmark's target: a keep-alive node:http server on 127.0.0.1, port 0, run as a forked
 * child so that it shares no event loop with trawl or the bare loop. With `--hosts=N` it also
 * listens on 127.0.0.2 .. 127.0.0.(N+1), same port: N more hosts for the per-host workloads.
 *
 * Route: GET /page/<size>/<latency-ms>/<n> answers 200 with <size> bytes after <latency-ms> ms
 * (<n> only makes each URL distinct). Anything else is 404.
 *
 * IPC (process.send): on start it sends { type: 'listening', port }. It answers
 * { type: 'stats', reset? } with { type: 'stats', requests, connections, maxInFlight, firstAt, lastAt }
 * (wall-clock ms of the first request and the last response since the reset) and exits
 * when its parent goes away.
 */
import http from 'node:http'
import type { AddressInfo } from 'node:net'

const MAX_SIZE = 64 * 1024 * 1024
const MAX_LATENCY_MS = 60_000
const bodies = new Map<number, Buffer>()

let requests = 0
let connections = 0
let inFlight = 0
let maxInFlight = 0
// Requests in flight by the local address they came to (the host), and the most on any one.
const perHost = new Map<string, number>()
let maxPerHost = 0
/** Wall-clock ms (fractional) of the first request and of the last response finished since the last reset. */
let firstAt = 0
let lastAt = 0
const wallNow = (): number => performance.timeOrigin + performance.now()

function bodyOf (size: number): Buffer {
  let body = bodies.get(size)
  if (body === undefined) {
    // One shared buffer per size: serving many large bodies costs the server no memory per request.
    body = Buffer.alloc(size, 'trawl bench page\n')
    bodies.set(size, body)
  }
  return body
}

const ROUTE = /^\/page\/(\d+)\/(\d+)\/(\d+)$/

const server = http.createServer((req, res) => {
  requests++
  const m = ROUTE.exec(req.url ?? '')
  const size = Number(m?.[1] ?? NaN)
  const latency = Number(m?.[2] ?? NaN)
  if (m === null || !(size >= 0 && size <= MAX_SIZE) || !(latency >= 0 && latency <= MAX_LATENCY_MS)) {
    res.writeHead(404, { 'content-type': 'text/plain' }).end('no such route')
    return
  }
  inFlight++
  if (inFlight > maxInFlight) maxInFlight = inFlight
  const host = req.socket.localAddress ?? ''
  const onHost = (perHost.get(host) ?? 0) + 1
  perHost.set(host, onHost)
  if (onHost > maxPerHost) maxPerHost = onHost
  if (firstAt === 0) firstAt = wallNow()
  let counted = true
  const finish = (): void => {
    if (counted) {
      counted = false
      inFlight--
      perHost.set(host, (perHost.get(host) ?? 1) - 1)
      lastAt = wallNow()
    }
  }
  res.once('finish', finish)
  res.once('close', finish)
  const send = (): void => {
    res.writeHead(200, { 'content-type': 'text/html; charset=utf-8', 'content-length': size })
    res.end(bodyOf(size))
  }
  if (latency === 0) {
    send()
  } else {
    const timer = setTimeout(send, latency)
    res.once('close', () => clearTimeout(timer))
  }
})

// Keep connections open across runs: clients decide when to close them.
server.keepAliveTimeout = 60_000
server.headersTimeout = 65_000
server.requestTimeout = 0
server.maxRequestsPerSocket = 0
server.on('connection', () => { connections++ })

process.on('message', (msg: { type?: string, reset?: boolean }) => {
  if (msg.type !== 'stats') return
  process.send?.({ type: 'stats', requests, connections, maxInFlight, maxPerHost, firstAt, lastAt })
  if (msg.reset === true) {
    requests = 0
    connections = 0
    maxInFlight = inFlight
    maxPerHost = Math.max(0, ...perHost.values())
    firstAt = 0
    lastAt = 0
  }
})
// The parent is gone (exit, crash or SIGKILL): do not outlive it.
process.on('disconnect', () => process.exit(0))

const extraHosts = Number(/^--hosts=(\d+)$/.exec(process.argv[2] ?? '')?.[1] ?? 0)
server.listen(0, '127.0.0.1', () => {
  const { port } = server.address() as AddressInfo
  // The same handler and counters on the other loopback addresses, same port.
  const others = Array.from({ length: extraHosts }, (_, i) => new Promise<void>((resolve, reject) => {
    const extra = http.createServer(server.listeners('request')[0] as http.RequestListener)
    Object.assign(extra, { keepAliveTimeout: server.keepAliveTimeout, headersTimeout: server.headersTimeout, requestTimeout: 0, maxRequestsPerSocket: 0 })
    extra.on('connection', () => { connections++ })
    extra.once('error', reject)
    extra.listen(port, `127.0.0.${i + 2}`, () => resolve())
  }))
  Promise.all(others).then(() => process.send?.({ type: 'listening', port }), (err: unknown) => {
    process.stderr.write(`target: ${String(err)}\n`)
    process.exit(1)
  })
})
