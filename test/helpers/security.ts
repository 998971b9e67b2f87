import { Writable } from 'node:stream'
import type { LightMyRequestResponse } from 'fastify'
import type { Redis } from 'ioredis'
import { pino, type Logger } from 'pino'
import type { Test } from 'tap'
import { loggerOptions } from '../../src/logger.js'

/** Headers of an answer, from `app.inject` or from `fetch`. */
type AnyHeaders = LightMyRequestResponse['headers'] | Headers

function header (headers: AnyHeaders, name: string): string | undefined {
  if (headers instanceof Headers) return headers.get(name) ?? undefined
  const v = headers[name]
  return v === undefined ? undefined : String(v)
}

/**
 * Checks that an answer is an RFC 9457 problem with the given status and code, as the contract
 * wants every error to be, and returns its body.
 */
export function assertProblem (t: Test, status: number, headers: AnyHeaders, raw: string, expected: { status: number, code: string }, what: string): Record<string, unknown> {
  t.equal(status, expected.status, `${what}: status ${expected.status}`)
  t.match(header(headers, 'content-type'), /^application\/problem\+json/, `${what}: application/problem+json`)
  let body: Record<string, unknown> = {}
  try {
    body = JSON.parse(raw) as Record<string, unknown>
  } catch {
    t.fail(`${what}: the body is JSON`, { raw: raw.slice(0, 200) })
  }
  t.match(body, {
    type: `urn:trawl:problem:${expected.code.toLowerCase().replaceAll('_', '-')}`,
    title: String,
    status: expected.status,
    detail: String,
    code: expected.code
  }, `${what}: problem ${expected.code}`)
  return body
}

/** assertProblem for an `app.inject` answer. */
export function injectedProblem (t: Test, res: LightMyRequestResponse, expected: { status: number, code: string }, what: string): Record<string, unknown> {
  return assertProblem(t, res.statusCode, res.headers, res.body, expected, what)
}

/** A pino logger with the service's own options (redaction included) that keeps every line. */
export function captureLogs (level = 'trace'): { logger: Logger, lines: string[], entries(): Array<Record<string, unknown>> } {
  const lines: string[] = []
  let partial = ''
  const stream = new Writable({
    write (chunk: Buffer, _enc, done) {
      partial += chunk.toString()
      let nl
      while ((nl = partial.indexOf('\n')) >= 0) {
        lines.push(partial.slice(0, nl))
        partial = partial.slice(nl + 1)
      }
      done()
    }
  })
  const logger = pino({ ...loggerOptions({ LOG_LEVEL: 'info' }), level }, stream)
  return {
    logger,
    lines,
    entries: () => lines.map((l) => JSON.parse(l) as Record<string, unknown>)
  }
}

/** Every key under `prefix:` (SCAN, not KEYS). */
export async function keysUnder (redis: Redis, pattern: string): Promise<string[]> {
  const out: string[] = []
  let cursor = '0'
  do {
    const [next, keys] = await redis.scan(cursor, 'MATCH', pattern, 'COUNT', 1000)
    cursor = next
    out.push(...keys)
  } while (cursor !== '0')
  return out
}

/**
 * Every key under the prefix with everything it holds (strings, hashes, lists, sets, sorted sets
 * and streams), as one text: what someone reading the Redis would see.
 */
export async function dumpPrefix (redis: Redis, prefix: string): Promise<{ keys: string[], text: string }> {
  const keys = await keysUnder(redis, `${prefix}:*`)
  const parts: string[] = []
  for (const key of keys) {
    const type = await redis.type(key)
    parts.push(`${type} ${key}`)
    if (type === 'string') {
      parts.push((await redis.getBuffer(key))?.toString('latin1') ?? '')
    } else if (type === 'hash') {
      const all = await redis.hgetallBuffer(key)
      for (const [field, value] of Object.entries(all)) parts.push(field, value.toString('latin1'))
    } else if (type === 'list') {
      parts.push(...(await redis.lrangeBuffer(key, 0, -1)).map((b) => b.toString('latin1')))
    } else if (type === 'set') {
      parts.push(...await redis.smembers(key))
    } else if (type === 'zset') {
      parts.push(...await redis.zrange(key, 0, -1, 'WITHSCORES'))
    } else if (type === 'stream') {
      for (const [id, fields] of await redis.xrange(key, '-', '+')) parts.push(id, ...fields)
    }
  }
  return { keys, text: parts.join('\n') }
}
