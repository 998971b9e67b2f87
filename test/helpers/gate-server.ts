import { EventEmitter, once } from 'node:events'
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http'
import type { AddressInfo } from 'node:net'

/**
 * A target whose `/hold/*` answers wait until the test opens the gate, so a test can catch a job
 * with fetches in flight. `/fast/*` answers at once. Every body is `size` bytes.
 */
export interface GateServer {
  url(path: string): string
  /** Requests to /hold/* waiting right now. */
  readonly waiting: number
  /** Resolves once `n` requests to /hold/* are waiting at the same time. */
  untilWaiting(n: number): Promise<void>
  /** Resolves once `n` held requests were closed by the client (aborted) before being answered. */
  untilAborted(n: number): Promise<void>
  /** Answers every held request now and every later one at once. */
  open(): void
  /** Holds later requests again. */
  shut(): void
  readonly served: number
  close(): Promise<void>
}

export async function startGateServer (size = 1000): Promise<GateServer> {
  const events = new EventEmitter()
  const held = new Set<ServerResponse>()
  let aborted = 0
  let served = 0
  let gateOpen = false
  const body = Buffer.alloc(size, 'x')
  const answer = (res: ServerResponse) => {
    if (res.destroyed) return
    served++
    res.writeHead(200, { 'content-type': 'text/plain', 'content-length': body.length }).end(body)
  }
  const server = createServer((req: IncomingMessage, res: ServerResponse) => {
    if (!req.url?.startsWith('/hold/') || gateOpen) {
      answer(res)
      return
    }
    held.add(res)
    res.on('close', () => {
      held.delete(res)
      if (!res.writableFinished) {
        aborted++
        events.emit('change')
      }
    })
    events.emit('change')
  })
  server.keepAliveTimeout = 500
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const { port } = server.address() as AddressInfo

  async function until (test: () => boolean) {
    while (!test()) await once(events, 'change')
  }

  return {
    url: (path) => `http://127.0.0.1:${port}${path}`,
    get waiting () { return held.size },
    get served () { return served },
    untilWaiting: (n) => until(() => held.size >= n),
    untilAborted: (n) => until(() => aborted >= n),
    open () {
      gateOpen = true
      for (const res of held) answer(res)
    },
    shut () { gateOpen = false },
    close: () => new Promise((resolve) => {
      gateOpen = true
      server.closeAllConnections()
      server.close(() => resolve())
    })
  }
}
