import { once } from 'node:events'
import http from 'node:http'
import type { AddressInfo } from 'node:net'
import { Redis } from 'ioredis'
import type { Test } from 'tap'
import { createHostGate, type HostGate } from '../../src/hosts/gate.js'
import { createHostSlots, type HostSlots } from '../../src/hosts/slots.js'
import { TEST_REDIS_URL } from '../helpers/redis.js'

/** A connection of the test's own, closed at teardown (each stands for a worker process). */
export function connect (t: Test): Redis {
  const redis = new Redis(TEST_REDIS_URL, { maxRetriesPerRequest: null })
  t.teardown(() => { redis.disconnect() })
  return redis
}

/** A "worker process": its own command and subscriber connections, slots and gate. */
export async function worker (t: Test, prefix: string, leaseMs = 5000): Promise<{ redis: Redis, slots: HostSlots, gate: HostGate }> {
  const redis = connect(t)
  const slots = createHostSlots(redis, { prefix, strikeBaseMs: 100, strikeMaxMs: 400 })
  const gate = await createHostGate({ slots, subscriber: connect(t), prefix, leaseMs })
  t.teardown(() => gate.close())
  return { redis, slots, gate }
}

export interface Target {
  origin: string
  /** Requests in flight now, and the most there ever were. */
  inFlight: number
  peak: number
  /** Requests seen, by path. */
  hits: Map<string, number>
}

/**
 * A loopback HTTP server recording its in-flight peak. `handle` answers; it may hold the
 * response (return a promise) to keep the request in flight.
 */
export async function startTarget (t: Test, handle: (req: http.IncomingMessage, res: http.ServerResponse) => unknown, host = '127.0.0.1'): Promise<Target> {
  const target: Target = { origin: '', inFlight: 0, peak: 0, hits: new Map() }
  const server = http.createServer((req, res) => {
    target.inFlight++
    target.peak = Math.max(target.peak, target.inFlight)
    const path = req.url ?? '/'
    target.hits.set(path, (target.hits.get(path) ?? 0) + 1)
    res.on('close', () => { target.inFlight-- })
    Promise.resolve(handle(req, res)).catch(() => res.destroy())
  })
  server.keepAliveTimeout = 100
  server.listen(0, host)
  await once(server, 'listening')
  target.origin = `http://${host}:${(server.address() as AddressInfo).port}`
  t.teardown(() => {
    server.closeAllConnections()
    return new Promise<void>((resolve) => server.close(() => resolve()))
  })
  return target
}

/** Resolves after `ms`: used to hold a response at the target, never to wait for a result. */
export const hold = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms))
