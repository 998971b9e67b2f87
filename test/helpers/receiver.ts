import { EventEmitter, once } from 'node:events'
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http'
import type { AddressInfo } from 'node:net'
import { signWebhook } from '../../src/callbacks/sign.js'

export interface Received {
  path: string
  headers: IncomingMessage['headers']
  body: string
  /** The signature checked with the secret, as a receiver would. */
  verified: boolean
}

/**
 * A callback receiver on loopback that verifies Standard Webhooks signatures. `answer` decides
 * each reply: a status, or 'hold' to never answer.
 */
export async function startReceiver (secret: string, answer: (n: number, req: Received) => number | 'hold' | { status: number, location: string }, host = '127.0.0.1') {
  const events = new EventEmitter()
  const received: Received[] = []
  const held = new Set<ServerResponse>()
  const server = createServer((req, res) => {
    const chunks: Buffer[] = []
    req.on('data', (c: Buffer) => chunks.push(c))
    req.on('end', () => {
      const body = Buffer.concat(chunks).toString()
      const id = String(req.headers['webhook-id'])
      const ts = Number(req.headers['webhook-timestamp'])
      const verified = req.headers['webhook-signature'] === signWebhook(secret, id, ts, body) && Math.abs(Date.now() / 1000 - ts) < 300
      const r: Received = { path: req.url ?? '', headers: req.headers, body, verified }
      received.push(r)
      const a = answer(received.length, r)
      events.emit('request', r)
      if (a === 'hold') {
        held.add(res)
        return
      }
      if (typeof a === 'number') res.writeHead(a).end()
      else res.writeHead(a.status, { location: a.location }).end()
    })
  })
  await new Promise<void>((resolve) => server.listen(0, host, resolve))
  const { port } = server.address() as AddressInfo
  return {
    url: (path = '/hook') => `http://${host}:${port}${path}`,
    received,
    async untilReceived (n: number) {
      while (received.length < n) await once(events, 'request')
    },
    close: () => new Promise<void>((resolve) => {
      for (const res of held) res.destroy()
      server.closeAllConnections()
      server.close(() => resolve())
    })
  }
}
