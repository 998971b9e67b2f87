import type { FastifyInstance } from 'fastify'
import tap, { type Test } from 'tap'
import type { SseEvent } from '../sse.js'
import { PRODUCERS, type Producer } from './answers.js'
import { deref, escape, eventVariants, headerMatches, isObject, pointer, spec, validatorAt, type Method, type ResponseObject } from './spec.js'

// Holding one real answer to openapi.yaml: its method, path and status are documented, its media
// type is one documented for that status, the documented headers are there, and the body
// validates against the documented schema (closed: no member the document does not name).

/** What the checks read of an answer: light-my-request's response, or a fetch Response read whole. */
export interface Answer {
  statusCode: number
  headers: Record<string, string | string[] | number | undefined>
  body: string
  rawPayload: Buffer
}

export const headerOf = (res: Answer, name: string) => {
  const v = res.headers[name.toLowerCase()]
  return v === undefined ? undefined : String(v)
}
const mediaTypeOf = (res: Answer) => (headerOf(res, 'content-type') ?? '').split(';')[0]?.trim().toLowerCase() ?? ''
const isJson = (mediaType: string) => mediaType === 'application/json' || mediaType.endsWith('+json')

// The headers helmet (http/protection.ts) puts on every answer (openapi.yaml, info.description).
const SECURITY_HEADERS: Array<[string, RegExp]> = [
  ['strict-transport-security', /^max-age=31536000; includeSubDomains$/],
  ['x-content-type-options', /^nosniff$/],
  ['x-frame-options', /^SAMEORIGIN$/],
  ['referrer-policy', /^no-referrer$/],
  ['cross-origin-resource-policy', /^same-origin$/],
  ['content-security-policy', /default-src 'none'/]
]

export function checkSecurityHeaders (t: Test, res: Answer, label: string): void {
  const missing = SECURITY_HEADERS.filter(([name, pattern]) => !pattern.test(headerOf(res, name) ?? '')).map(([name]) => name)
  // Framing: helmet's policy forbids it; the stored-content route's own policy sandboxes instead.
  if (!/frame-ancestors 'none'|sandbox/.test(headerOf(res, 'content-security-policy') ?? '')) missing.push('content-security-policy (frame-ancestors or sandbox)')
  t.same(missing, [], `${label}: the documented security headers are sent`)
}

/**
 * A HEAD of a path whose GET is documented but whose HEAD is not (the event stream): the
 * route-not-found answer (`RouteNotFound`), its headers without the body.
 */
export function checkHeadNotFound (t: Test, res: Answer, label: string): void {
  t.equal(res.statusCode, 404, `${label}: 404, no route`)
  t.match(headerOf(res, 'content-type') ?? '', /^application\/problem\+json/, `${label}: the headers of a problem`)
  t.equal(res.rawPayload.length, 0, `${label}: no body`)
  checkSecurityHeaders(t, res, label)
}

/**
 * Checks one real answer against the operation `method path` of openapi.yaml and returns its
 * parsed JSON body (undefined when it has none).
 */
export function check (t: Test, res: Answer, method: Method, path: string): unknown {
  const label = `${method.toUpperCase()} ${path} ${res.statusCode}`
  const op = spec.paths[path]?.[method]
  if (!op) {
    t.fail(`${method.toUpperCase()} ${path} is documented`)
    return undefined
  }
  const status = String(res.statusCode)
  const documented = op.responses[status]
  if (!documented) {
    t.fail(`${label} is documented`, { body: res.body })
    return undefined
  }
  produced(t, label)
  if (method === 'post' && path === '/jobs' && res.statusCode !== 401 && res.statusCode !== 503) {
    t.ok(['limit', 'remaining', 'reset'].every((h) => headerOf(res, `x-ratelimit-${h}`) !== undefined), `${label}: the X-RateLimit-* headers are sent`)
  }
  const ref = documented.$ref ?? `#/paths/${escape(path)}/${method}/responses/${status}`
  return checkResponse(t, res, ref, label)
}

/** Checks one real answer against the response object at `ref` (e.g. `#/components/responses/RouteNotFound`). */
export function checkResponse (t: Test, res: Answer, ref: string, label = ref): unknown {
  let at = ref
  let response = pointer(spec, at) as ResponseObject
  while (response.$ref) {
    at = response.$ref
    response = pointer(spec, at) as ResponseObject
  }
  checkSecurityHeaders(t, res, label)
  for (const [name, raw] of Object.entries(response.headers ?? {})) {
    const header = deref(raw)
    const value = headerOf(res, name)
    if (header.required) t.ok(value !== undefined, `${label}: header ${name} is present`)
    if (value !== undefined && header.schema) {
      const { ok, errors } = headerMatches(header.schema, value)
      t.ok(ok, `${label}: header ${name} (${value}) matches its schema`, { errors })
    }
  }
  const mediaTypes = Object.keys(response.content ?? {})
  if (mediaTypes.length === 0) {
    t.equal(res.rawPayload.length, 0, `${label}: no body, as documented`)
    return undefined
  }
  const mediaType = mediaTypeOf(res)
  // A documented media type may name parameters (`text/plain; version=0.0.4`): the answer must send them too.
  const documented = mediaTypes.find((m) => m.split(';')[0]?.trim() === mediaType) ?? mediaTypes.find((m) => m === '*/*')
  if (!documented) {
    t.fail(`${label}: media type ${mediaType || '(none)'} is one of ${mediaTypes.join(', ')}`)
    return undefined
  }
  const sent = (headerOf(res, 'content-type') ?? '').replaceAll(' ', '').toLowerCase()
  for (const param of documented.split(';').slice(1)) {
    t.ok(sent.includes(`;${param.trim().replaceAll(' ', '').toLowerCase()}`), `${label}: Content-Type has ${param.trim()}`)
  }
  t.pass(`${label}: media type ${mediaType} is documented (${documented})`)
  if (!isJson(mediaType)) {
    t.ok(mediaType.includes('/'), `${label}: a Content-Type is sent`)
    return undefined
  }
  let body: unknown
  try {
    body = JSON.parse(res.body)
  } catch {
    t.fail(`${label}: the body is JSON`, { body: res.body })
    return undefined
  }
  const validate = validatorAt(`${at}/content/${escape(documented)}/schema`)
  t.ok(validate(body), `${label}: the body matches the documented schema`, { errors: validate.errors, body })
  return body
}

/** `METHOD /path` of every route Fastify serves, read from `printRoutes`. */
export function registeredRoutes (t: Test, app: FastifyInstance): Set<string> {
  const out = new Set<string>()
  const stack: string[] = []
  for (const line of app.printRoutes({ commonPrefix: false }).split('\n')) {
    if (line.trim() === '') continue
    const m = /^((?:[│ ] {3})*)[├└]── (\S+?)(?: \(([A-Z, ]+)\))?$/.exec(line)
    if (!m) {
      t.fail(`printRoutes line not understood: ${JSON.stringify(line)}`)
      continue
    }
    const depth = (m[1] ?? '').length / 4
    stack.length = depth
    stack.push(m[2] ?? '')
    for (const method of m[3]?.split(', ') ?? []) out.add(`${method} ${stack.join('')}`)
  }
  return out
}

/** Checks one event against JobEvent and its `data` against the documented payload schema; returns the payload. */
export function checkEvent (t: Test, event: SseEvent): Record<string, unknown> | undefined {
  const label = `event ${event.event ?? '(none)'} ${event.id ?? '(no id)'}`
  const validEvent = validatorAt('#/components/schemas/JobEvent')
  t.ok(validEvent(event), `${label}: matches JobEvent`, { errors: validEvent.errors, event })
  const ref = eventVariants.get(event.event ?? '')
  if (!ref) {
    t.fail(`${label}: a documented event`)
    return undefined
  }
  let data: Record<string, unknown>
  try {
    data = JSON.parse(event.data) as Record<string, unknown>
  } catch {
    t.fail(`${label}: data is JSON`, { data: event.data })
    return undefined
  }
  const validData = validatorAt(ref)
  t.ok(validData(data), `${label}: data matches ${ref.split('/').pop()}`, { errors: validData.errors, data })
  return data
}

// --- Which answers each test produced -------------------------------------------------------

const tracked = new WeakMap<object, Set<string>>()

/** Notes that the running contract test produced and checked `answer` (`METHOD /path status`). */
export function produced (t: Test, answer: string): void {
  for (let node: unknown = t; isObject(node); node = (node as { parent?: unknown }).parent) tracked.get(node)?.add(answer)
}

/**
 * A contract test: `name` is its entry in PRODUCERS (answers.ts), the documented answers it
 * promises to produce. It fails unless it produced and checked each of them, by itself: no test
 * counts on another having run, and spec.test.ts holds the list to openapi.yaml.
 */
export function contractTest (name: Producer, fn: (t: Test) => Promise<void>): void {
  tap.test(name, async (t) => {
    const seen = new Set<string>()
    tracked.set(t, seen)
    await fn(t)
    for (const answer of PRODUCERS[name]) t.ok(seen.has(answer), `produced and checked: ${answer}`)
    if (process.env.CONTRACT_SEEN) t.comment(`SEEN ${JSON.stringify(name)}: ${JSON.stringify([...seen].sort())}`)
  })
}
