import { createHmac, randomUUID } from 'node:crypto'
import { readFileSync } from 'node:fs'
import { connect, createServer, type Socket } from 'node:net'
import { join } from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import { Ajv2020, type ValidateFunction } from 'ajv/dist/2020.js'
import addFormatsModule from 'ajv-formats'
import type { FastifyInstance } from 'fastify'
import { Redis } from 'ioredis'
import t, { type Test } from 'tap'
import { ulid } from 'ulid'
import { Agent, fetch as undiciFetch, type RequestInit, type Response } from 'undici'
import { parse } from 'yaml'
import { z } from 'zod'
import { configSchema } from '../../src/config.js'
import { problemCatalogue, problemType, type ProblemCode } from '../../src/http/problems.js'
import { finishedChannel } from '../../src/jobs/keys.js'
import { RESULT_ERROR_CODES } from '../../src/jobs/result-codes.js'
import {
  callbackStatusSchema, countsSchema, DEFAULT_OPTIONS, JOB_STATES, jobDocumentSchema,
  jobOptionsDocSchema, jobOptionsSchema, jobSummarySchema, MAX_URL_LENGTH, pageSchema, RESULT_STATES,
  resultErrorSchema, resultItemSchema, submitBodySchema, type JobDocument
} from '../../src/jobs/schemas.js'
import { startGateServer } from '../helpers/gate-server.js'
import { startReceiver } from '../helpers/receiver.js'
import { TEST_REDIS_URL } from '../helpers/redis.js'
import { startSeedSite } from '../helpers/seed.js'
import { ROOT, startTrawl } from '../helpers/trawl.js'

// openapi.yaml against the code: the catalogues it copies, the routes Fastify serves, and every
// answer of every route, produced for real against a live API, worker and Redis (and the
// callback, against a live receiver). Each real answer is held to the document: its method,
// path and status are documented, its media type is one documented for that status, the
// documented headers are there, and the body validates against the documented schema; every
// event of a real event stream validates against the documented event schemas. A last test
// fails if any documented answer was never produced.

type Schema = Record<string, unknown>

interface HeaderObject {
  $ref?: string
  required?: boolean
  schema?: Schema
}

interface ResponseObject {
  $ref?: string
  description?: string
  headers?: Record<string, HeaderObject>
  content?: Record<string, { schema?: Schema, 'x-itemSchema'?: Schema }>
}

interface ParameterObject {
  $ref?: string
  name: string
  in: string
  required?: boolean
  schema: Schema
}

interface Operation {
  operationId?: string
  security?: Array<Record<string, string[]>>
  parameters?: ParameterObject[]
  responses: Record<string, ResponseObject>
}

const METHODS = ['get', 'put', 'post', 'delete', 'options', 'head', 'patch', 'trace'] as const
type Method = typeof METHODS[number]
type PathItem = Partial<Record<Method, Operation>> & { parameters?: unknown[] }

interface OpenApi {
  openapi: string
  security?: unknown
  paths: Record<string, PathItem>
  webhooks: Record<string, PathItem>
  components: {
    schemas: Record<string, Schema>
    responses: Record<string, ResponseObject>
    headers: Record<string, HeaderObject>
    parameters: Record<string, ParameterObject>
    securitySchemes: Record<string, Schema>
  }
}

/** What the checks read of an answer: light-my-request's response, or a fetch Response read whole. */
interface Answer {
  statusCode: number
  headers: Record<string, string | string[] | number | undefined>
  body: string
  rawPayload: Buffer
}

const SPEC_FILE = join(ROOT, 'openapi.yaml')
const spec = parse(readFileSync(SPEC_FILE, 'utf8')) as OpenApi

// The id the (rewritten) document is registered under in Ajv; every local $ref is made absolute.
const SPEC_ID = 'https://trawl.invalid/openapi.json'

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v)

/** Follows one `$ref` (local, `#/...`) in the original document. */
function deref<T> (node: T & { $ref?: string }): T {
  let current: unknown = node
  for (let hops = 0; isObject(current) && typeof current.$ref === 'string'; hops++) {
    if (hops > 10) throw new Error(`$ref loop at ${String(current.$ref)}`)
    current = pointer(spec, current.$ref)
  }
  return current as T
}

/** The node at a local reference such as `#/components/schemas/Problem`, or throws. */
function pointer (root: unknown, ref: string): unknown {
  if (!ref.startsWith('#/')) throw new Error(`not a local $ref: ${ref}`)
  let node = root
  for (const raw of ref.slice(2).split('/')) {
    const key = decodeURIComponent(raw).replaceAll('~1', '/').replaceAll('~0', '~')
    if (!isObject(node) || !(key in node)) throw new Error(`$ref does not resolve: ${ref}`)
    node = node[key]
  }
  return node
}

/** Every `$ref` string anywhere in a node. */
function refsIn (node: unknown, out: string[] = []): string[] {
  if (Array.isArray(node)) for (const v of node) refsIn(v, out)
  else if (isObject(node)) {
    for (const [k, v] of Object.entries(node)) {
      if (k === '$ref' && typeof v === 'string') out.push(v)
      else refsIn(v, out)
    }
  }
  return out
}

function * operationsOf (items: Record<string, PathItem>): Generator<[path: string, method: Method, op: Operation]> {
  for (const [path, item] of Object.entries(items)) {
    for (const m of METHODS) {
      const op = item[m]
      if (op) yield [path, m, op]
    }
  }
}

/**
 * The spec leaves its response objects open (clients should tolerate new members), but the code
 * must not send members the spec does not name: the copy the tests validate against closes every
 * object schema with `unevaluatedProperties: false`. A schema that is a base of an `allOf` stays
 * open itself; the schema that extends it is closed and so covers the base's members too.
 */
function closeSchemas (doc: OpenApi): void {
  const bases = new Set<string>()
  for (const node of allNodes(doc)) {
    if (!Array.isArray(node.allOf)) continue
    for (const member of node.allOf) {
      if (isObject(member) && typeof member.$ref === 'string') bases.add(member.$ref)
    }
  }
  const close = (s: unknown, isBase: boolean): void => {
    if (!isObject(s)) return
    if (!isBase && (isObject(s.properties) || Array.isArray(s.allOf))) s.unevaluatedProperties = false
    if (isObject(s.properties)) for (const p of Object.values(s.properties)) close(p, false)
    close(s.items, false)
    close(s.additionalProperties, false)
    if (Array.isArray(s.allOf)) for (const m of s.allOf) close(m, true)
    for (const list of [s.oneOf, s.anyOf]) if (Array.isArray(list)) for (const m of list) close(m, false)
  }
  for (const [name, s] of Object.entries(doc.components.schemas)) close(s, bases.has(`#/components/schemas/${name}`))
  const responses = [
    ...Object.values(doc.components.responses),
    ...[...operationsOf(doc.paths)].flatMap(([, , op]) => Object.values(op.responses))
  ]
  for (const r of responses) for (const media of Object.values(r.content ?? {})) close(media.schema, false)
}

function * allNodes (node: unknown): Generator<Record<string, unknown>> {
  if (Array.isArray(node)) for (const v of node) yield * allNodes(v)
  else if (isObject(node)) {
    yield node
    for (const v of Object.values(node)) yield * allNodes(v)
  }
}

function absolutize (doc: unknown): void {
  for (const node of allNodes(doc)) {
    if (typeof node.$ref === 'string' && node.$ref.startsWith('#/')) node.$ref = `${SPEC_ID}${node.$ref}`
  }
}

const closed = structuredClone(spec)
closeSchemas(closed)
absolutize(closed)

// `strict: false`: OpenAPI keywords such as `example` are not JSON Schema.
const ajv = new Ajv2020({ strict: false, allErrors: true })
addFormatsModule.default(ajv)
ajv.addSchema(closed as unknown as Schema, SPEC_ID)
const headerAjv = new Ajv2020({ strict: false, allErrors: true, coerceTypes: true })
addFormatsModule.default(headerAjv)

const compiled = new Map<string, ValidateFunction>()

/** A validator for the schema at a local reference, in the closed copy of the document. */
function validatorAt (ref: string): ValidateFunction {
  let validate = compiled.get(ref)
  if (!validate) {
    validate = ajv.compile(pointer(closed, ref) as Schema)
    compiled.set(ref, validate)
  }
  return validate
}

/** A validator for a schema in the document as written (open objects), e.g. request bodies. */
function openValidatorAt (ref: string): ValidateFunction {
  const key = `open:${ref}`
  let validate = compiled.get(key)
  if (!validate) {
    const open = structuredClone(pointer(spec, ref)) as Schema
    absolutize(open)
    validate = ajv.compile(open)
    compiled.set(key, validate)
  }
  return validate
}

/** Does a header value match a documented header schema (values are strings, so types are coerced)? */
function headerMatches (schema: Schema, value: string): { ok: boolean, errors: unknown } {
  const validate = headerAjv.compile(deref(schema))
  return { ok: validate(value), errors: validate.errors }
}

const escape = (segment: string) => segment.replaceAll('~', '~0').replaceAll('/', '~1')

/** `/jobs/{id}` -> `/jobs/:id` */
const toFastifyPath = (path: string) => path.replaceAll(/\{([^}]+)\}/g, ':$1')

/** Every documented operation as `METHOD /path/{param}`. */
function documentedOperations (): string[] {
  return [...operationsOf(spec.paths)].map(([path, m]) => `${m.toUpperCase()} ${path}`)
}

/**
 * Every documented answer (method, path, status), and each answer of each webhook. `default`
 * (500 INTERNAL, "an unexpected error") is left out: no request can produce it without a bug.
 */
function documentedAnswers (): string[] {
  const answers = (items: Record<string, PathItem>, kind: string) => [...operationsOf(items)].flatMap(([path, m, op]) =>
    Object.keys(op.responses).filter((s) => kind === 'WEBHOOK' || s !== 'default').map((s) => `${kind}${m.toUpperCase()} ${path} ${s}`))
  return [...answers(spec.paths, ''), ...answers(spec.webhooks, 'WEBHOOK ')]
}

/** The answers the tests have checked so far, as `METHOD /path/{param} status`. */
const seen = new Set<string>()

const headerOf = (res: Answer, name: string) => {
  const v = res.headers[name.toLowerCase()]
  return v === undefined ? undefined : String(v)
}
const mediaTypeOf = (res: Answer) => (headerOf(res, 'content-type') ?? '').split(';')[0]?.trim().toLowerCase() ?? ''
const isJson = (mediaType: string) => mediaType === 'application/json' || mediaType.endsWith('+json')

/**
 * HTTP to a listening API through an agent of the test's own, destroyed when the test ends (before
 * the API closes, teardowns run last-in first-out): an idle client socket, or one the client opened
 * and never used, would otherwise hold the server's close until the client's keep-alive runs out.
 */
function httpClient (t: Test) {
  const agent = new Agent()
  t.teardown(() => agent.destroy())
  return { fetch: (url: string, init: RequestInit = {}) => undiciFetch(url, { ...init, dispatcher: agent }) }
}
type HttpClient = ReturnType<typeof httpClient>

/** A fetch Response, read whole, as an Answer. */
async function answerOf (res: Response): Promise<Answer> {
  const raw = Buffer.from(await res.arrayBuffer())
  return { statusCode: res.status, headers: Object.fromEntries(res.headers), body: raw.toString(), rawPayload: raw }
}

// The headers @fastify/helmet puts on every answer (openapi.yaml, info.description).
const SECURITY_HEADERS: Array<[string, RegExp]> = [
  ['strict-transport-security', /^max-age=31536000; includeSubDomains$/],
  ['x-content-type-options', /^nosniff$/],
  ['x-frame-options', /^SAMEORIGIN$/],
  ['referrer-policy', /^no-referrer$/],
  ['cross-origin-resource-policy', /^same-origin$/],
  ['content-security-policy', /default-src 'none'/]
]

function checkSecurityHeaders (t: Test, res: Answer, label: string): void {
  const missing = SECURITY_HEADERS.filter(([name, pattern]) => !pattern.test(headerOf(res, name) ?? '')).map(([name]) => name)
  // Framing: helmet's policy forbids it; the stored-content route's own policy sandboxes instead.
  if (!/frame-ancestors 'none'|sandbox/.test(headerOf(res, 'content-security-policy') ?? '')) missing.push('content-security-policy (frame-ancestors or sandbox)')
  t.same(missing, [], `${label}: the documented security headers are sent`)
}

/**
 * A HEAD of a path whose GET is documented but whose HEAD is not (the event stream): the
 * route-not-found answer (`RouteNotFound`), its headers without the body.
 */
function checkHeadNotFound (t: Test, res: Answer, label: string): void {
  t.equal(res.statusCode, 404, `${label}: 404, no route`)
  t.match(headerOf(res, 'content-type') ?? '', /^application\/problem\+json/, `${label}: the headers of a problem`)
  t.equal(res.rawPayload.length, 0, `${label}: no body`)
  checkSecurityHeaders(t, res, label)
}

/**
 * Checks one real answer against the operation `method path` of openapi.yaml and returns its
 * parsed JSON body (undefined when it has none).
 */
function check (t: Test, res: Answer, method: Method, path: string): unknown {
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
  seen.add(label)
  if (method === 'post' && path === '/jobs' && res.statusCode !== 401 && res.statusCode !== 503) {
    t.ok(['limit', 'remaining', 'reset'].every((h) => headerOf(res, `x-ratelimit-${h}`) !== undefined), `${label}: the X-RateLimit-* headers are sent`)
  }
  const ref = documented.$ref ?? `#/paths/${escape(path)}/${method}/responses/${status}`
  return checkResponse(t, res, ref, label)
}

/** Checks one real answer against the response object at `ref` (e.g. `#/components/responses/RouteNotFound`). */
function checkResponse (t: Test, res: Answer, ref: string, label = ref): unknown {
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
  const documented = mediaTypes.find((m) => m === mediaType) ?? mediaTypes.find((m) => m === '*/*')
  if (!documented) {
    t.fail(`${label}: media type ${mediaType || '(none)'} is one of ${mediaTypes.join(', ')}`)
    return undefined
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
function registeredRoutes (t: Test, app: FastifyInstance): Set<string> {
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

// --- Server-Sent Events ---------------------------------------------------------------------

type StreamItem =
  | { kind: 'retry', value: number }
  | { kind: 'comment', text: string }
  | { kind: 'event', fields: Record<string, string> }

interface EventStream {
  answer: Answer
  items: AsyncGenerator<StreamItem>
  abort(): void
}

/** Opens a real event stream and reads it as the WHATWG parser does, keeping every field name. */
async function openStream (client: HttpClient, url: string, headers: Record<string, string> = {}): Promise<EventStream> {
  const controller = new AbortController()
  const res = await client.fetch(url, { headers: { accept: 'text/event-stream', ...headers }, signal: controller.signal })
  async function * items (): AsyncGenerator<StreamItem> {
    if (!res.body) return
    const decoder = new TextDecoder()
    let buffer = ''
    let fields: Record<string, string> = {}
    try {
      for await (const chunk of res.body) {
        buffer += decoder.decode(chunk, { stream: true })
        let nl
        while ((nl = buffer.indexOf('\n')) >= 0) {
          const line = buffer.slice(0, nl).replace(/\r$/, '')
          buffer = buffer.slice(nl + 1)
          if (line === '') {
            if ('data' in fields) yield { kind: 'event', fields }
            fields = {}
          } else if (line.startsWith(':')) {
            yield { kind: 'comment', text: line.slice(1).trim() }
          } else {
            const colon = line.indexOf(':')
            const name = colon < 0 ? line : line.slice(0, colon)
            const value = colon < 0 ? '' : line.slice(colon + 1).replace(/^ /, '')
            if (name === 'retry') yield { kind: 'retry', value: Number(value) }
            else fields[name] = name === 'data' && 'data' in fields ? `${fields.data}\n${value}` : value
          }
        }
      }
    } catch (err) {
      if (!controller.signal.aborted) throw err
    }
  }
  const answer: Answer = { statusCode: res.status, headers: Object.fromEntries(res.headers), body: '', rawPayload: Buffer.alloc(0) }
  return { answer, items: items(), abort: () => controller.abort() }
}

interface SseEvent { id?: string, event?: string, data: string }
const asEvent = (fields: Record<string, string>): SseEvent => ({ ...fields, data: fields.data ?? '' })

/** The events (no comments, no retry) until the stream ends. */
async function eventsOf (stream: EventStream): Promise<SseEvent[]> {
  const out: SseEvent[] = []
  for await (const item of stream.items) if (item.kind === 'event') out.push(asEvent(item.fields))
  return out
}

// The event schemas, read from the document: event name -> the schema of its `data` JSON.
const eventStreamMedia = spec.paths['/jobs/{id}/events']?.get?.responses['200']?.content?.['text/event-stream']
const eventVariants = new Map<string, string>()
for (const member of (deref(deref(eventStreamMedia?.['x-itemSchema'] ?? {})).oneOf as Schema[] | undefined) ?? []) {
  const variant = deref(member) as { properties: { event: { const: string }, data: { contentSchema: { $ref: string } } } }
  eventVariants.set(variant.properties.event.const, variant.properties.data.contentSchema.$ref)
}

/** Checks one event against JobEvent and its `data` against the documented payload schema; returns the payload. */
function checkEvent (t: Test, event: SseEvent): Record<string, unknown> | undefined {
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

const compareIds = (a: string, b: string) => {
  const [am = 0, as = 0] = a.split('-').map(Number)
  const [bm = 0, bs = 0] = b.split('-').map(Number)
  return am - bm || as - bs
}

// --- Redis ----------------------------------------------------------------------------------

/** A TCP proxy in front of Redis that the test can cut and restore. */
async function startRedisProxy () {
  const target = new URL(TEST_REDIS_URL)
  const sockets = new Set<Socket>()
  const server = createServer((client) => {
    const upstream = connect(Number(target.port || 6379), target.hostname)
    for (const s of [client, upstream]) {
      sockets.add(s)
      s.on('close', () => sockets.delete(s))
      s.on('error', () => {})
    }
    client.pipe(upstream).pipe(client)
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const address = server.address()
  const port = typeof address === 'object' && address ? address.port : 0
  return {
    url: `redis://127.0.0.1:${port}`,
    cut: () => new Promise<void>((resolve) => {
      server.close(() => resolve())
      for (const s of sockets) s.destroy()
    }),
    restore: () => new Promise<void>((resolve) => server.listen(port, '127.0.0.1', resolve)),
    close: () => new Promise<void>((resolve) => {
      for (const s of sockets) s.destroy()
      if (server.listening) server.close(() => resolve())
      else resolve()
    })
  }
}

/** Polls `probe` until it returns a value, or fails after `ms`. */
async function until<T> (probe: () => Promise<T | undefined>, ms = 5000, every = 20): Promise<T | undefined> {
  const deadline = Date.now() + ms
  for (;;) {
    const value = await probe()
    if (value !== undefined || Date.now() > deadline) return value
    await sleep(every)
  }
}

const MISSING_ID = 'j_01JAAAAAAAAAAAAAAAAAAAAAAA'
const LONG_ID = `j_${'A'.repeat(70)}`
const CALLBACK_SECRET = 'contract-test-secret-0123456789'
const schemas = spec.components.schemas
const props = (name: string) => (deref(schemas[name] ?? {}).properties ?? {}) as Record<string, Schema>
const json = (body: unknown) => body as JobDocument
const PROBES = new Set(['/healthz', '/readyz'])

// Bodies captured from real answers, reused to show that the validators can fail.
const captured: {
  doc?: JobDocument
  problem?: Record<string, unknown>
  stateEvent?: SseEvent
  resultEvent?: SseEvent
  callbackBody?: Record<string, unknown>
} = {}

t.test('the document is OpenAPI 3.1 and every $ref resolves', async (t) => {
  t.match(spec.openapi, /^3\.1\.\d+$/)
  const refs = refsIn(spec)
  t.ok(refs.length > 20)
  for (const ref of new Set(refs)) t.doesNotThrow(() => pointer(spec, ref), ref)
  // Every component is used somewhere (RouteNotFound is answered for paths no route serves).
  for (const kind of ['schemas', 'responses', 'headers', 'parameters'] as const) {
    for (const name of Object.keys(spec.components[kind])) {
      if (kind === 'responses' && name === 'RouteNotFound') continue
      t.ok(refs.includes(`#/components/${kind}/${name}`), `components/${kind}/${name} is used`)
    }
  }
  const schemesUsed = new Set([...operationsOf(spec.paths)].flatMap(([, , op]) => (op.security ?? []).flatMap((s) => Object.keys(s))))
  for (const name of Object.keys(spec.components.securitySchemes)) t.ok(schemesUsed.has(name), `components/securitySchemes/${name} is used`)
  t.ok(eventVariants.size >= 2, `the event schemas are read from x-itemSchema (${[...eventVariants.keys()].join(', ')})`)
})

t.test('security: every route but the probes needs the bearer API key and documents 401', async (t) => {
  t.match(spec.components.securitySchemes.apiKey, { type: 'http', scheme: 'bearer' })
  t.equal(spec.security, undefined, 'no document-wide requirement: each operation says its own')
  for (const [path, method, op] of operationsOf(spec.paths)) {
    const name = `${method.toUpperCase()} ${path}`
    if (PROBES.has(path)) {
      t.same(op.security ?? [], [], `${name} needs no key`)
      t.notOk('401' in op.responses, `${name} documents no 401`)
    } else {
      t.same(op.security, [{ apiKey: [] }], `${name} needs the API key`)
      t.ok('401' in op.responses, `${name} documents 401`)
    }
  }
})

t.test('the catalogues in openapi.yaml are the ones in the code', async (t) => {
  const codes = Object.keys(problemCatalogue) as ProblemCode[]
  const problemCode = deref(schemas.ProblemCode ?? {})
  t.same(problemCode.enum, codes, 'ProblemCode enum = keys of problemCatalogue (src/errors.ts), in order')
  const table = String(problemCode.description)
  for (const code of codes) {
    const row = `| ${code} | ${problemCatalogue[code].status} | ${problemType(code)} |`
    t.ok(table.includes(row), `ProblemCode documents ${row}`)
  }
  t.equal(table.match(/^\| [A-Z_]+ \|/gm)?.length, codes.length, 'and no other code')
  const problemTypePattern = new RegExp(String(props('Problem').type?.pattern))
  for (const code of codes) t.match(problemType(code), problemTypePattern, `Problem.type pattern admits ${problemType(code)}`)

  // Each code some response documents is in the catalogue, with the status it is documented under.
  for (const [path, method, op] of operationsOf(spec.paths)) {
    for (const [status, raw] of Object.entries(op.responses)) {
      if (status === 'default') continue
      const media = deref(raw).content?.['application/problem+json']
      const code = (media?.schema?.properties as Record<string, Schema> | undefined)?.code
      for (const c of code ? (code.enum as string[] | undefined) ?? [code.const as string] : []) {
        t.equal(problemCatalogue[c as ProblemCode]?.status, Number(status), `${method.toUpperCase()} ${path} ${status}: ${c} has status ${status} in the catalogue`)
      }
    }
  }

  t.same(props('ResultError').code?.enum, [...RESULT_ERROR_CODES], 'ResultError.code enum = RESULT_ERROR_CODES')
  t.same(schemas.JobState?.enum, [...JOB_STATES], 'JobState enum = JOB_STATES')
  t.same(schemas.ResultState?.enum, [...RESULT_STATES], 'ResultState enum = RESULT_STATES')
})

t.test('request limits and defaults in openapi.yaml are the ones the code enforces', async (t) => {
  const options = props('Options')
  const zodOptions = z.toJSONSchema(jobOptionsSchema, { io: 'input', unrepresentable: 'any' }) as { properties: Record<string, Schema> }
  t.same(Object.keys(options).sort(), Object.keys(zodOptions.properties).sort(), 'the same options')
  for (const [name, zs] of Object.entries(zodOptions.properties)) {
    const os = options[name] ?? {}
    for (const key of ['type', 'minimum', 'maximum'] as const) t.same(os[key], zs[key], `Options.${name}.${key}`)
    t.same(os.default, DEFAULT_OPTIONS[name as keyof typeof DEFAULT_OPTIONS], `Options.${name}.default`)
  }
  t.equal((options.headers?.additionalProperties as Schema).maxLength, (zodOptions.properties.headers?.additionalProperties as Schema).maxLength, 'header value length')
  t.equal(options.headers?.maxProperties, 50)

  const maxUrls = configSchema.parse({}).MAX_URLS_PER_JOB
  const zodBody = z.toJSONSchema(submitBodySchema(maxUrls), { io: 'input', unrepresentable: 'any' }) as { properties: Record<string, Schema>, required: string[] }
  const body = props('JobSubmission')
  t.same(Object.keys(body).sort(), Object.keys(zodBody.properties).sort(), 'the same members')
  t.same(deref(schemas.JobSubmission ?? {}).required, zodBody.required, 'the same required members')
  t.equal(body.urls?.minItems, zodBody.properties.urls?.minItems, 'urls.minItems')
  t.equal(body.urls?.maxItems, maxUrls, 'urls.maxItems = the default MAX_URLS_PER_JOB')
  t.equal(deref(schemas.HttpUrl ?? {}).maxLength, MAX_URL_LENGTH, 'HttpUrl.maxLength')

  // The query of GET /jobs/{id} (src/routes/jobs.ts readQuery), parameter by parameter.
  const params = spec.components.parameters
  t.same(params.Wait?.schema, { type: 'number', minimum: 0, maximum: 60, default: 0 }, 'parameter wait')
  t.same(params.Offset?.schema, { type: 'integer', minimum: 0, maximum: 100_000_000, default: 0 }, 'parameter offset')
  t.same(params.Limit?.schema, { type: 'integer', minimum: 1, maximum: 1000, default: 100 }, 'parameter limit')
  t.same(params.Results?.schema, { type: 'string', enum: ['none', 'page'], default: 'page' }, 'parameter results')
  t.same(params.JobId?.schema, { type: 'string' }, 'parameter id: any string (one that is not a job id is a job that does not exist)')

  // Defaults named in descriptions are the configured ones.
  const defaults = configSchema.parse({})
  const text = [...allNodes(spec)].map((n) => n.description).filter((d) => typeof d === 'string').join(' ').replaceAll(/\s+/g, ' ')
  t.match(text, `\`SSE_HEARTBEAT_MS\` (default ${defaults.SSE_HEARTBEAT_MS / 1000} s)`, 'heartbeat default')
  t.match(text, `\`RATE_LIMIT_PER_MINUTE\` submissions (default ${defaults.RATE_LIMIT_PER_MINUTE})`, 'rate limit default')
  t.match(text, `\`MAX_PENDING_URLS_PER_TENANT\` URLs (default ${defaults.MAX_PENDING_URLS_PER_TENANT.toLocaleString('en')})`, 'pending cap default')
  t.match(text, `\`CALLBACK_MAX_ATTEMPTS\` attempts in all (default ${defaults.CALLBACK_MAX_ATTEMPTS})`, 'callback attempts default')
  t.match(text, `default base ${defaults.CALLBACK_RETRY_BASE_MS / 1000} s`, 'callback backoff default')
  t.match(text, `\`OVERLOAD_MAX_EVENT_LOOP_DELAY_MS\`, default ${defaults.OVERLOAD_MAX_EVENT_LOOP_DELAY_MS} ms`, 'overload default')
  const { CALLBACK_TIMEOUT_MS } = await import('../../src/callbacks/deliver.js')
  t.match(text, `within ${CALLBACK_TIMEOUT_MS / 1000} s`, 'callback timeout')
})

t.test('response members in openapi.yaml are the ones the code declares', async (t) => {
  const allowsNull = (s: unknown): boolean => {
    if (typeof s !== 'object' || s === null) return false
    const o = s as Schema
    if (o.type === 'null' || (Array.isArray(o.type) && o.type.includes('null'))) return true
    return [o.anyOf, o.oneOf].some((list) => Array.isArray(list) && list.some(allowsNull))
  }
  const pairs: Array<[string, Record<string, Schema>, string[], z.ZodType]> = [
    ['JobSummary', props('JobSummary'), deref(schemas.JobSummary ?? {}).required as string[], jobSummarySchema],
    ['JobDocument', { ...props('JobSummary'), ...props('JobDocument') }, deref(schemas.JobSummary ?? {}).required as string[], jobDocumentSchema],
    ['ResultItem', props('ResultItem'), deref(schemas.ResultItem ?? {}).required as string[], resultItemSchema],
    ['Counts', props('Counts'), deref(schemas.Counts ?? {}).required as string[], countsSchema],
    ['Page', props('Page'), deref(schemas.Page ?? {}).required as string[], pageSchema],
    ['CallbackStatus', props('CallbackStatus'), deref(schemas.CallbackStatus ?? {}).required as string[], callbackStatusSchema],
    ['ResultError', props('ResultError'), deref(schemas.ResultError ?? {}).required as string[], resultErrorSchema],
    ['ResolvedOptions', props('Options'), deref(schemas.ResolvedOptions ?? {}).required as string[], jobOptionsDocSchema]
  ]
  for (const [name, documented, required, zodSchema] of pairs) {
    const code = z.toJSONSchema(zodSchema, { io: 'output', unrepresentable: 'any' }) as { properties: Record<string, Schema>, required?: string[] }
    t.same(Object.keys(documented).sort(), Object.keys(code.properties).sort(), `${name}: the same members`)
    t.same([...required].sort(), [...(code.required ?? [])].sort(), `${name}: the same required members`)
    for (const [member, s] of Object.entries(code.properties)) {
      t.equal(allowsNull(documented[member]), allowsNull(s), `${name}.${member}: nullable in both or in neither`)
    }
  }
  // State events and callbacks carry the summary (jobSummarySchema) and nothing else.
  t.same(schemas.JobSnapshot?.allOf, [{ $ref: '#/components/schemas/JobSummary' }], 'JobSnapshot is JobSummary')
  t.notOk('properties' in (schemas.JobSnapshot ?? {}), 'JobSnapshot adds no member')
  t.same(schemas.CallbackBody?.allOf, [{ $ref: '#/components/schemas/JobSummary' }], 'CallbackBody is JobSummary')
  const summaryMembers = Object.keys(props('JobSummary'))
  for (const member of Object.keys(props('CallbackBody'))) t.ok(summaryMembers.includes(member), `CallbackBody.${member} narrows a JobSummary member`)
})

t.test('the routes Fastify serves are the routes openapi.yaml documents', async (t) => {
  const { api } = await startTrawl(t, { worker: false })
  const served = registeredRoutes(t, api.app)
  t.ok(served.size >= 10, `printRoutes was read (${[...served].join(', ')})`)
  const documented = new Set(documentedOperations().map((op) => {
    const [method = '', path = ''] = op.split(' ')
    return `${method} ${toFastifyPath(path)}`
  }))
  for (const route of served) t.ok(documented.has(route), `served ${route} is documented`)
  for (const route of documented) {
    t.ok(served.has(route), `documented ${route} is served`)
    const [method = '', url = ''] = route.split(' ')
    t.ok(api.app.hasRoute({ method: method as 'GET', url }), `hasRoute(${route})`)
  }
})

t.test('every answer of the job routes, for real', async (t) => {
  const site = await startSeedSite()
  t.teardown(site.close)
  const gate = await startGateServer(300)
  t.teardown(gate.close)
  // A small MAX_URLS_PER_JOB makes bodyLimit its floor (1 MiB, src/app.ts), so 413 is cheap;
  // CALLBACK_SECRET lets a job carry a callback, retried after 20 ms; heartbeats every 200 ms.
  const trawl = await startTrawl(t, {
    env: { MAX_URLS_PER_JOB: '20', CALLBACK_SECRET, CALLBACK_RETRY_BASE_MS: '20', SSE_HEARTBEAT_MS: '200' }
  })
  const { api } = trawl
  const base = await api.app.listen({ port: 0, host: '127.0.0.1' })
  const http = httpClient(t)
  const inject = (method: string, url: string, extra: { payload?: string | object, headers?: Record<string, string> } = {}) =>
    api.app.inject({ method: method as 'GET', url, ...extra }) as Promise<Answer>
  const validSubmission = openValidatorAt('#/components/schemas/JobSubmission')
  const origin = new URL(site.urls[0] ?? '').origin

  await t.test('202 on submit, then 200 after wait with every kind of result', async (t) => {
    const payload = {
      urls: [site.urls[0], site.urls[1], `${origin}/wiki/Missing`, 'http://127.0.0.1:9/closed'],
      options: { concurrency: 2, retries: 0, headers: { 'Accept-Language': 'en' } }
    }
    t.ok(validSubmission(payload), 'the payload matches JobSubmission', { errors: validSubmission.errors })
    const res = await inject('POST', '/jobs', { payload })
    const job = json(check(t, res, 'post', '/jobs'))
    t.equal(res.statusCode, 202)
    t.equal(job.state, 'queued', '202 is always queued')
    t.equal(res.headers.location, `/jobs/${job.id}`)
    t.same(job.results?.map((r) => r.state), ['pending', 'pending', 'pending', 'pending'])

    const done = json(check(t, await inject('GET', `/jobs/${job.id}?wait=30`), 'get', '/jobs/{id}'))
    t.equal(done.state, 'completed', 'wait returns once the job is finished')
    t.same(done.results?.map((r) => r.index), [0, 1, 2, 3], 'results in input order')
    t.same(done.results?.map((r) => r.state), ['succeeded', 'succeeded', 'failed', 'failed'])
    t.equal(done.results?.[2]?.error?.code, 'HTTP_STATUS')
    t.equal(done.results?.[1]?.bytes, site.bodies[1]?.length, 'bytes are decoded bytes (this page came gzipped)')
    t.same(done.options.headers, { 'accept-language': 'en' })
    captured.doc = done

    const none = json(check(t, await inject('GET', `/jobs/${job.id}?results=none`), 'get', '/jobs/{id}'))
    t.notOk('results' in none, 'results=none leaves results out')
    t.notOk('page' in none, 'and page')

    const page = json(check(t, await inject('GET', `/jobs/${job.id}?offset=1&limit=2`), 'get', '/jobs/{id}'))
    t.same(page.results?.map((r) => r.index), [1, 2])
    t.same(page.page, { offset: 1, limit: 2, next: `/jobs/${job.id}?offset=3&limit=2` })
    const last = json(check(t, await inject('GET', page.page?.next ?? ''), 'get', '/jobs/{id}'))
    t.same(last.page, { offset: 3, limit: 2, next: null })
    const past = json(check(t, await inject('GET', `/jobs/${job.id}?offset=50`), 'get', '/jobs/{id}'))
    t.same(past.results, [])

    for (const i of [0, 1]) {
      const item = done.results?.[i]
      const content = await inject('GET', item?.contentUrl ?? '')
      check(t, content, 'get', '/jobs/{id}/results/{index}/content')
      t.equal(content.statusCode, 200)
      t.equal(content.headers['content-type'], item?.contentType, 'the Content-Type it came with')
      t.ok(content.rawPayload.equals(site.bodies[i] ?? Buffer.alloc(0)), 'the decoded body, byte for byte')
      check(t, await inject('HEAD', item?.contentUrl ?? ''), 'head', '/jobs/{id}/results/{index}/content')
    }
    const failed = await inject('GET', `/jobs/${job.id}/results/2/content`)
    t.equal((check(t, failed, 'get', '/jobs/{id}/results/{index}/content') as { code: string }).code, 'CONTENT_NOT_FOUND')
    const beyond = await inject('GET', `/jobs/${job.id}/results/99/content`)
    t.equal((check(t, beyond, 'get', '/jobs/{id}/results/{index}/content') as { code: string }).code, 'CONTENT_NOT_FOUND')
    check(t, await inject('HEAD', `/jobs/${job.id}/results/2/content`), 'head', '/jobs/{id}/results/{index}/content')
    check(t, await inject('HEAD', `/jobs/${job.id}`), 'head', '/jobs/{id}')

    const again = await inject('DELETE', `/jobs/${job.id}`)
    t.equal(again.statusCode, 409)
    t.equal((check(t, again, 'delete', '/jobs/{id}') as { code: string }).code, 'JOB_FINISHED')
  })

  await t.test('keepContent: false stores no body', async (t) => {
    const res = await inject('POST', '/jobs', { payload: { urls: [site.urls[2]], options: { keepContent: false } } })
    const job = json(check(t, res, 'post', '/jobs'))
    const done = json(check(t, await inject('GET', `/jobs/${job.id}?wait=30`), 'get', '/jobs/{id}'))
    t.equal(done.results?.[0]?.state, 'succeeded')
    t.equal(done.results?.[0]?.contentUrl, null)
    const content = await inject('GET', `/jobs/${job.id}/results/0/content`)
    t.equal((check(t, content, 'get', '/jobs/{id}/results/{index}/content') as { code: string }).code, 'CONTENT_NOT_FOUND')
  })

  await t.test('the callback: signed, redirect not followed, retried with the same id and body, then delivered', async (t) => {
    // The first attempt is redirected (a failed attempt; the redirect is not followed), the second gets 204.
    const receiver = await startReceiver(CALLBACK_SECRET, (n) => (n === 1 ? { status: 307, location: '/elsewhere' } : 204))
    t.teardown(receiver.close)
    const payload = { urls: [gate.url('/fast/a')], callbackUrl: receiver.url('/hook') }
    t.ok(validSubmission(payload), 'the payload matches JobSubmission', { errors: validSubmission.errors })
    const job = json(check(t, await inject('POST', '/jobs', { payload }), 'post', '/jobs'))
    t.same(job.callback, { url: payload.callbackUrl, state: 'pending', attempts: 0, lastStatus: null, lastError: null })
    await receiver.untilReceived(2)
    // The delivery is recorded just after the receiver answers.
    await until(async () => (await inject('GET', `/jobs/${job.id}?results=none`)).body.includes('"state":"delivered"') || undefined)
    const settled = json(check(t, await inject('GET', `/jobs/${job.id}?results=none`), 'get', '/jobs/{id}'))
    t.same(settled?.callback, { url: payload.callbackUrl, state: 'delivered', attempts: 2, lastStatus: 204, lastError: null }, 'the callback block')
    t.equal(settled?.state, 'completed', 'the callback never changes the job state')
    t.same(receiver.received.map((r) => r.path), ['/hook', '/hook'], 'the redirect target was never called')

    const webhook = spec.webhooks.jobFinished?.post
    const bodySchema = '#/webhooks/jobFinished/post/requestBody/content/application~1json/schema'
    for (const [n, r] of receiver.received.entries()) {
      const label = `WEBHOOK POST jobFinished, attempt ${n + 1}`
      t.equal(r.headers['content-type'], 'application/json', `${label}: JSON`)
      for (const raw of webhook?.parameters ?? []) {
        const p = deref(raw)
        const value = r.headers[p.name.toLowerCase()]
        if (p.required) t.ok(value !== undefined, `${label}: header ${p.name} is present`)
        const { ok, errors } = headerMatches(p.schema, String(value))
        t.ok(ok, `${label}: header ${p.name} (${String(value)}) matches its schema`, { errors })
      }
      const id = String(r.headers['webhook-id'])
      const timestamp = String(r.headers['webhook-timestamp'])
      // The signature as the document describes it, computed here rather than with src/callbacks/sign.ts.
      const expected = `v1,${createHmac('sha256', CALLBACK_SECRET).update(`${id}.${timestamp}.${r.body}`).digest('base64')}`
      t.equal(r.headers['webhook-signature'], expected, `${label}: the signature is as documented`)
      t.ok(Math.abs(Date.now() / 1000 - Number(timestamp)) < 300, `${label}: the timestamp is now, in seconds`)
      t.equal(id, job.id, `${label}: webhook-id is the job id`)
      const body = JSON.parse(r.body) as Record<string, unknown>
      const validate = validatorAt(bodySchema)
      t.ok(validate(body), `${label}: the body matches CallbackBody`, { errors: validate.errors, body })
      t.same(body.callback, { url: payload.callbackUrl, state: 'pending', attempts: 0, lastStatus: null, lastError: null }, `${label}: the body shows the delivery as it stood before the first attempt`)
      captured.callbackBody ??= body
    }
    t.equal(receiver.received[0]?.body, receiver.received[1]?.body, 'every retry sends the same bytes')
    t.equal(receiver.received[0]?.headers['webhook-id'], receiver.received[1]?.headers['webhook-id'], 'and the same webhook-id')
    // The receiver's answers: a 307 (documented as `default`, retried) and a 204 (2XX, delivered).
    t.ok(webhook?.responses.default && webhook.responses['2XX'], 'the webhook documents 2XX and default')
    seen.add('WEBHOOK POST jobFinished default')
    seen.add('WEBHOOK POST jobFinished 2XX')
  })

  await t.test('Idempotency-Key: 200 replay, 422 another request, 409 in progress, 400 malformed', async (t) => {
    const payload = { urls: [gate.url('/fast/idem')] }
    const key = `contract-${randomUUID()}`
    const first = await inject('POST', '/jobs', { payload, headers: { 'idempotency-key': key } })
    const job = json(check(t, first, 'post', '/jobs'))
    t.equal(first.statusCode, 202)

    // The same request again, also with the defaults spelled out: the same job, not a second one.
    for (const body of [payload, { ...payload, options: { concurrency: 5, keepContent: true } }]) {
      const replay = await inject('POST', '/jobs', { payload: body, headers: { 'idempotency-key': key } })
      t.equal(replay.statusCode, 200, 'the same key and request: 200')
      t.equal(json(check(t, replay, 'post', '/jobs')).id, job.id, 'the job the first request created')
      t.equal(replay.headers.location, `/jobs/${job.id}`)
    }

    const other = await inject('POST', '/jobs', { payload: { urls: [gate.url('/fast/other')] }, headers: { 'idempotency-key': key } })
    t.equal(other.statusCode, 422)
    t.equal((check(t, other, 'post', '/jobs') as { code: string }).code, 'IDEMPOTENCY_KEY_REUSED')

    // 409 is the answer while the first request with a key is between claiming the key and
    // creating its job. That window is too short to hit on purpose, so the test leaves Redis as
    // such a request does: the key claimed (`pending <jobId> <hash>`), with the same request
    // hash, for a job not created yet.
    const key2 = `contract-${randomUUID()}`
    const job2 = json(check(t, await inject('POST', '/jobs', { payload, headers: { 'idempotency-key': key2 } }), 'post', '/jobs'))
    const redis = new Redis(TEST_REDIS_URL)
    t.teardown(() => redis.disconnect())
    const slots = await redis.keys(`${trawl.prefix}:tenant:public:idem:*`)
    const values = await Promise.all(slots.map((k) => redis.get(k)))
    const slot = slots[values.findIndex((v) => v?.startsWith(`bound ${job2.id} `))]
    t.ok(slot, 'the key is bound in Redis to the job and the request hash')
    const [, , hash] = (values[slots.indexOf(slot ?? '')] ?? '').split(' ')
    await redis.set(slot ?? '', `pending j_${ulid()} ${hash}`, 'PX', 60_000)
    const busy = await inject('POST', '/jobs', { payload, headers: { 'idempotency-key': key2 } })
    t.equal(busy.statusCode, 409)
    t.equal((check(t, busy, 'post', '/jobs') as { code: string }).code, 'IDEMPOTENCY_IN_PROGRESS')

    // A key bound to a job that has expired since is free again: the retry is a new job.
    const gone = `j_${ulid()}`
    await redis.set(slot ?? '', `bound ${gone} ${hash}`, 'PX', 60_000)
    const again = await inject('POST', '/jobs', { payload, headers: { 'idempotency-key': key2 } })
    t.equal(again.statusCode, 202, 'a key whose job has expired makes a new job')
    const job3 = json(check(t, again, 'post', '/jobs'))
    t.not(job3.id, gone)
    t.not(job3.id, job2.id)
    t.match(await redis.get(slot ?? ''), new RegExp(`^bound ${job3.id} `), 'and the key is bound to it')

    const longest = await inject('POST', '/jobs', { payload, headers: { 'idempotency-key': '~'.repeat(255) } })
    t.equal(longest.statusCode, 202, '255 visible ASCII characters are a key')
    check(t, longest, 'post', '/jobs')
    for (const bad of ['', 'with space', 'x'.repeat(256)]) {
      const res = await inject('POST', '/jobs', { payload, headers: { 'idempotency-key': bad } })
      t.equal(res.statusCode, 400, `Idempotency-Key ${JSON.stringify(bad.slice(0, 20))}`)
      t.same((check(t, res, 'post', '/jobs') as { errors?: Array<{ path: string }> }).errors?.map((e) => e.path), ['/headers/idempotency-key'])
    }
  })

  await t.test('a running job: wait runs out, then DELETE cancels it, twice', async (t) => {
    const urls = [gate.url('/hold/0'), gate.url('/hold/1'), gate.url('/hold/2')]
    const job = json(check(t, await inject('POST', '/jobs', { payload: { urls, options: { concurrency: 2, retries: 0 } } }), 'post', '/jobs'))
    await gate.untilWaiting(2)
    const running = json(check(t, await inject('GET', `/jobs/${job.id}?wait=0.3`), 'get', '/jobs/{id}'))
    t.equal(running.state, 'running', 'wait ran out: 200 with the job unfinished')
    t.same(running.results?.map((r) => r.state), ['running', 'running', 'pending'])
    t.same(running.finishedAt, null)
    const notYet = await inject('GET', `/jobs/${job.id}/results/0/content`)
    t.equal((check(t, notYet, 'get', '/jobs/{id}/results/{index}/content') as { code: string }).code, 'CONTENT_NOT_FOUND')

    const cancel = await inject('DELETE', `/jobs/${job.id}`)
    t.equal(cancel.statusCode, 200)
    const cancelled = json(check(t, cancel, 'delete', '/jobs/{id}'))
    t.equal(cancelled.state, 'cancelled')
    t.same(cancelled.results?.map((r) => r.error?.code), ['CANCELLED', 'CANCELLED', 'CANCELLED'])
    const twice = await inject('DELETE', `/jobs/${job.id}`)
    t.equal(twice.statusCode, 200, 'cancelling a cancelled job again answers 200')
    check(t, twice, 'delete', '/jobs/{id}')
  })

  await t.test('200 event stream: retry, snapshot, history, live events, heartbeats, the end; resumable', async (t) => {
    const slow = await startGateServer(100)
    t.teardown(slow.close)
    const job = json(check(t, await inject('POST', '/jobs', {
      payload: { urls: [slow.url('/fast/0'), slow.url('/hold/1')], options: { concurrency: 2, retries: 0 } }
    }), 'post', '/jobs'))
    await slow.untilWaiting(1)
    const url = `${base}/jobs/${job.id}/events`

    // The stream has no HEAD (it would hold the connection and send nothing): an unknown route,
    // answered at once.
    const head = await Promise.race([http.fetch(url, { method: 'HEAD' }).then(answerOf), sleep(2000).then(() => 'held' as const)])
    t.not(head, 'held', 'HEAD of an unfinished job\'s stream answers at once')
    if (head !== 'held') checkHeadNotFound(t, head, `HEAD ${url}`)

    const stream = await openStream(http, url)
    t.equal(stream.answer.statusCode, 200)
    check(t, stream.answer, 'get', '/jobs/{id}/events')
    const items: StreamItem[] = []
    let opened = false
    for await (const item of stream.items) {
      items.push(item)
      // Once the fast URL's result is in and the stream has idled for a heartbeat, let the held one go.
      const result0 = items.findIndex((i) => i.kind === 'event' && i.fields.event === 'result' && JSON.parse(i.fields.data ?? '{}').index === 0)
      if (!opened && result0 >= 0 && items.slice(result0).some((i) => i.kind === 'comment')) {
        opened = true
        slow.open()
      }
    }
    t.ok(opened, 'the stream idled with a heartbeat before the last URL was let go')
    t.same(items[0], { kind: 'retry', value: 2000 }, 'retry: 2000 comes first')
    const events = items.filter((i) => i.kind === 'event').map((i) => i.fields)
    t.ok(events.every((e) => Object.keys(e).sort().join() === 'data,event,id'), 'every event has id, event and data, and nothing else')
    const full = events.map(asEvent)
    const payloads = full.map((e) => checkEvent(t, e))
    t.equal(full[0]?.id, '0-0', 'a fresh stream starts with the snapshot, id 0-0')
    t.equal(full[0]?.event, 'state')
    t.equal(payloads[0]?.state, 'running', 'the snapshot is the job as it is now')
    const ids = full.slice(1).map((e) => e.id ?? '')
    t.ok(ids.every((id) => /^\d+-\d+$/.test(id)), 'history events carry Redis stream ids')
    t.ok(ids.every((id, i) => i === 0 || compareIds(ids[i - 1] ?? '', id) < 0), 'ids increase along the stream')
    const history = full.slice(1).map((e, i) => ({ event: e.event, data: payloads[i + 1] ?? {} }))
    t.same(history.filter((e) => e.event === 'state').map((e) => e.data.state), ['queued', 'running', 'completed'], 'the whole history: queued, running, completed')
    t.same(history.filter((e) => e.event === 'result').map((e) => [e.data.index, e.data.state]).sort(), [[0, 'succeeded'], [1, 'succeeded']], 'one result event per URL')
    t.equal(history[history.length - 1]?.event, 'state', 'the final state is the last event: then the stream ended')
    const lastResult = items.findIndex((i) => i.kind === 'event' && i.fields.event === 'result' && JSON.parse(i.fields.data ?? '{}').index === 1)
    t.ok(items.slice(0, lastResult).some((i) => i.kind === 'comment' && i.text === 'heartbeat'), 'a heartbeat comment went out while the stream was idle, and the last result came live after it')
    captured.stateEvent = full[full.length - 1]
    captured.resultEvent = full.find((e) => e.event === 'result')

    // Resuming: exactly the events after the one named, by header or query, no snapshot.
    for (const k of [0, 1, full.length - 2]) {
      const after = full[k]?.id ?? ''
      const viaHeader = await openStream(http, url, { 'last-event-id': after })
      check(t, viaHeader.answer, 'get', '/jobs/{id}/events')
      t.same(await eventsOf(viaHeader), full.slice(k + 1), `Last-Event-ID ${after}: the events after it, none lost, none twice`)
      const viaQuery = await openStream(http, `${url}?after=${after}`)
      t.same(await eventsOf(viaQuery), full.slice(k + 1), `?after=${after}: the same`)
    }
    const both = await openStream(http, `${url}?after=${full[1]?.id ?? ''}`, { 'last-event-id': full[2]?.id ?? '' })
    t.same(await eventsOf(both), full.slice(3), 'Last-Event-ID wins over ?after=')

    // A finished job: snapshot (its final state), the whole history, the end.
    const fresh = await eventsOf(await openStream(http, url))
    t.equal(fresh[0]?.id, '0-0')
    t.equal(JSON.parse(fresh[0]?.data ?? '{}').state, 'completed', 'the snapshot shows the final state')
    t.same(fresh.slice(1), full.slice(1), 'then the whole history, then the end')
    for (const e of fresh) checkEvent(t, e)

    // Resuming after the final event: there is nothing more to send.
    const tail = await openStream(http, url, { 'last-event-id': full[full.length - 1]?.id ?? '' })
    let ended = true
    for await (const item of tail.items) {
      if (item.kind === 'comment' || item.kind === 'event') {
        ended = false
        tail.abort()
      }
    }
    t.ok(ended, 'resuming after the final event ends the stream at once')
    check(t, tail.answer, 'get', '/jobs/{id}/events')

    checkHeadNotFound(t, await inject('HEAD', `/jobs/${job.id}/events`), 'HEAD of a finished job\'s stream')
  })

  await t.test('event stream: 400 for a malformed event id, 404 for an unknown job, the stream whatever Accept says, no HEAD', async (t) => {
    const job = json(check(t, await inject('POST', '/jobs', { payload: { urls: [gate.url('/fast/e')] } }), 'post', '/jobs'))
    const paths = (res: Answer, method: Method) => (check(t, res, method, '/jobs/{id}/events') as { errors?: Array<{ path: string }> } | undefined)?.errors?.map((e) => e.path)
    for (const [url, headers, path] of [
      [`/jobs/${job.id}/events?after=yesterday`, {}, '/querystring/after'],
      [`/jobs/${job.id}/events?after=1-2-3`, {}, '/querystring/after'],
      [`/jobs/${job.id}/events?after=${'1'.repeat(65)}`, {}, '/querystring/after'],
      [`/jobs/${job.id}/events`, { 'last-event-id': 'zz' }, '/headers/last-event-id'],
      [`/jobs/${job.id}/events?after=0-0`, { 'last-event-id': 'zz' }, '/headers/last-event-id']
    ] as const) {
      const res = await inject('GET', url, { headers })
      t.equal(res.statusCode, 400, `${url} ${JSON.stringify(headers)}`)
      t.same(paths(res, 'get'), [path], 'errors name the bad input')
    }
    for (const id of [MISSING_ID, 'not-an-id', LONG_ID]) {
      const res = await inject('GET', `/jobs/${id}/events`)
      t.equal(res.statusCode, 404, id)
      t.equal((check(t, res, 'get', '/jobs/{id}/events') as { code: string }).code, 'JOB_NOT_FOUND')
    }
    // HEAD is not served here, whatever the job: the route-not-found answer, without its body.
    for (const url of [`/jobs/${job.id}/events?after=yesterday`, `/jobs/${MISSING_ID}/events`, `/jobs/${job.id}/events`]) {
      checkHeadNotFound(t, await inject('HEAD', url), `HEAD ${url}`)
    }
    // The route has one representation: whatever the Accept, the stream (no 406). The job is
    // finished first, so each stream ends by itself.
    t.equal(json(check(t, await inject('GET', `/jobs/${job.id}?wait=10&results=none`), 'get', '/jobs/{id}')).state, 'completed')
    for (const accept of ['application/json', 'text/html', 'application/problem+json', 'image/png;q=1, */*;q=0']) {
      const res = await inject('GET', `/jobs/${job.id}/events`, { headers: { accept } })
      t.equal(res.statusCode, 200, `Accept: ${accept}`)
      t.match(res.headers['content-type'], /^text\/event-stream/, `Accept: ${accept}: the stream`)
      check(t, res, 'get', '/jobs/{id}/events')
      t.match(res.body, /^retry: 2000$/m, 'it opens with retry')
      t.match(res.body, /^data: \{.*"state":"completed"/m, 'and carries the final state')
    }
  })

  await t.test('400: each bad field is listed as a JSON pointer, and the documented request schema refuses it too', async (t) => {
    const cases: Array<{ payload: unknown, paths: string[], schemaRefuses: boolean }> = [
      { payload: { urls: [] }, paths: ['/urls'], schemaRefuses: true },
      { payload: {}, paths: ['/urls'], schemaRefuses: true },
      // A JSON pointer to the whole body is "" (RFC 6901); "/" would name a member called "".
      { payload: ['http://a.test/'], paths: [''], schemaRefuses: true },
      { payload: { urls: ['http://a.test/', 'not a url', 'ftp://x.test/f'] }, paths: ['/urls/1', '/urls/2'], schemaRefuses: true },
      { payload: { urls: [`http://a.test/${'x'.repeat(2100)}`] }, paths: ['/urls/0'], schemaRefuses: true },
      // The URL parser would drop white space around a URL; the server refuses it instead.
      { payload: { urls: [' http://a.test/', 'http://a.test/\n', '\thttp://a.test/\t', 'http://a.test/ok'] }, paths: ['/urls/0', '/urls/1', '/urls/2'], schemaRefuses: true },
      { payload: { urls: ['http://a.test/'], extra: 1 }, paths: [''], schemaRefuses: true },
      { payload: { urls: ['http://a.test/'], callbackUrl: 'mailto:a@b.test' }, paths: ['/callbackUrl'], schemaRefuses: true },
      { payload: { urls: ['http://a.test/'], options: { concurrency: 0 } }, paths: ['/options/concurrency'], schemaRefuses: true },
      { payload: { urls: ['http://a.test/'], options: { concurrency: 1001 } }, paths: ['/options/concurrency'], schemaRefuses: true },
      { payload: { urls: ['http://a.test/'], options: { timeoutMs: 99 } }, paths: ['/options/timeoutMs'], schemaRefuses: true },
      { payload: { urls: ['http://a.test/'], options: { timeoutMs: 300_001 } }, paths: ['/options/timeoutMs'], schemaRefuses: true },
      { payload: { urls: ['http://a.test/'], options: { retries: 11 } }, paths: ['/options/retries'], schemaRefuses: true },
      { payload: { urls: ['http://a.test/'], options: { maxBytes: 0 } }, paths: ['/options/maxBytes'], schemaRefuses: true },
      { payload: { urls: ['http://a.test/'], options: { maxRedirects: 21 } }, paths: ['/options/maxRedirects'], schemaRefuses: true },
      { payload: { urls: ['http://a.test/'], options: { keepContent: 'yes' } }, paths: ['/options/keepContent'], schemaRefuses: true },
      { payload: { urls: ['http://a.test/'], options: { speed: 'max' } }, paths: ['/options'], schemaRefuses: true },
      { payload: { urls: ['http://a.test/'], options: { headers: { 'x-a': 'b\r\nx-c: d' } } }, paths: ['/options/headers/x-a'], schemaRefuses: true },
      { payload: { urls: ['http://a.test/'], options: { headers: { 'bad name': 'x' } } }, paths: ['/options/headers/bad name'], schemaRefuses: true },
      { payload: { urls: ['http://a.test/'], options: { headers: { 'a/b': 'x' } } }, paths: ['/options/headers/a~1b'], schemaRefuses: true },
      { payload: { urls: ['http://a.test/'], options: { headers: { 'a~b c': 'x' } } }, paths: ['/options/headers/a~0b c'], schemaRefuses: true },
      // Only the description can say which header names are refused.
      { payload: { urls: ['http://a.test/'], options: { headers: { Connection: 'close' } } }, paths: ['/options/headers/Connection'], schemaRefuses: false },
      // The spec's maxItems is the default MAX_URLS_PER_JOB; this server takes 20.
      { payload: { urls: Array.from({ length: 21 }, (_, i) => `http://a.test/${i}`) }, paths: ['/urls'], schemaRefuses: false }
    ]
    for (const c of cases) {
      const res = await inject('POST', '/jobs', { payload: JSON.stringify(c.payload), headers: { 'content-type': 'application/json' } })
      const problem = check(t, res, 'post', '/jobs') as { errors?: Array<{ path: string }> }
      t.equal(res.statusCode, 400, JSON.stringify(c.payload).slice(0, 80))
      t.ok(problem?.errors?.length, 'errors are listed')
      t.same(problem?.errors?.map((e) => e.path).sort(), c.paths.sort(), 'errors name the bad fields')
      if (c.schemaRefuses) t.notOk(validSubmission(c.payload), 'JobSubmission refuses it too')
    }
    captured.problem = check(t, await inject('POST', '/jobs', { payload: { urls: [] } }), 'post', '/jobs') as Record<string, unknown>

    for (const [raw, name] of [['{"urls": [', 'malformed JSON'], ['', 'empty body']] as const) {
      const res = await inject('POST', '/jobs', { payload: raw, headers: { 'content-type': 'application/json' } })
      const problem = check(t, res, 'post', '/jobs') as { code: string, errors?: unknown }
      t.equal(res.statusCode, 400, name)
      t.equal(problem.code, 'VALIDATION_FAILED')
      t.equal(problem.errors, undefined, `${name}: no errors`)
    }

    for (const [url, path] of [
      [`/jobs/${MISSING_ID}?limit=5000`, '/querystring/limit'],
      [`/jobs/${MISSING_ID}?limit=0`, '/querystring/limit'],
      [`/jobs/${MISSING_ID}?offset=-1`, '/querystring/offset'],
      [`/jobs/${MISSING_ID}?offset=100000001`, '/querystring/offset'],
      [`/jobs/${MISSING_ID}?offset=9007199254740990&limit=5`, '/querystring/offset'],
      [`/jobs/${MISSING_ID}?wait=61`, '/querystring/wait'],
      [`/jobs/${MISSING_ID}?results=all`, '/querystring/results']
    ] as const) {
      const res = await inject('GET', url)
      const problem = check(t, res, 'get', '/jobs/{id}') as { errors?: Array<{ path: string }> }
      t.equal(res.statusCode, 400, url)
      t.same(problem?.errors?.map((e) => e.path), [path])
    }
    check(t, await inject('HEAD', `/jobs/${MISSING_ID}?limit=5000`), 'head', '/jobs/{id}')
    for (const url of [`/jobs/${MISSING_ID}/results/abc/content`, `/jobs/${MISSING_ID}/results/-1/content`]) {
      const res = await inject('GET', url)
      const problem = check(t, res, 'get', '/jobs/{id}/results/{index}/content') as { errors?: Array<{ path: string }> }
      t.equal(res.statusCode, 400, url)
      t.same(problem?.errors?.map((e) => e.path), ['/params/index'])
    }
    check(t, await inject('HEAD', `/jobs/${MISSING_ID}/results/abc/content`), 'head', '/jobs/{id}/results/{index}/content')
  })

  await t.test('404 for unknown jobs (any id that is not a job) and for paths no route serves', async (t) => {
    for (const [method, url, path, code] of [
      ['get', `/jobs/${MISSING_ID}`, '/jobs/{id}', 'JOB_NOT_FOUND'],
      ['get', '/jobs/not-an-id', '/jobs/{id}', 'JOB_NOT_FOUND'],
      ['get', `/jobs/${LONG_ID}`, '/jobs/{id}', 'JOB_NOT_FOUND'],
      ['delete', `/jobs/${MISSING_ID}`, '/jobs/{id}', 'JOB_NOT_FOUND'],
      ['delete', `/jobs/${LONG_ID}`, '/jobs/{id}', 'JOB_NOT_FOUND'],
      ['get', `/jobs/${MISSING_ID}/results/0/content`, '/jobs/{id}/results/{index}/content', 'JOB_NOT_FOUND'],
      ['get', `/jobs/${LONG_ID}/results/0/content`, '/jobs/{id}/results/{index}/content', 'JOB_NOT_FOUND']
    ] as const) {
      const res = await inject(method.toUpperCase(), url)
      t.equal(res.statusCode, 404, `${method} ${url}`)
      t.equal((check(t, res, method, path) as { code: string }).code, code)
    }
    check(t, await inject('HEAD', `/jobs/${MISSING_ID}`), 'head', '/jobs/{id}')
    check(t, await inject('HEAD', `/jobs/${MISSING_ID}/results/0/content`), 'head', '/jobs/{id}/results/{index}/content')
    for (const [method, url] of [['GET', '/nope'], ['PUT', '/jobs'], ['GET', '/jobs'], ['POST', `/jobs/${MISSING_ID}`], ['PATCH', '/healthz'], ['POST', `/jobs/${MISSING_ID}/events`]] as const) {
      const res = await inject(method, url)
      t.equal(res.statusCode, 404, `${method} ${url}`)
      checkResponse(t, res, '#/components/responses/RouteNotFound', `${method} ${url}`)
    }
  })

  await t.test('415 for a body that is not JSON, 413 for one that is too large', async (t) => {
    const form = await inject('POST', '/jobs', { payload: 'urls=http://a.test/', headers: { 'content-type': 'application/x-www-form-urlencoded' } })
    t.equal(form.statusCode, 415)
    check(t, form, 'post', '/jobs')
    const huge = await inject('POST', '/jobs', { payload: JSON.stringify({ urls: [`http://a.test/${'x'.repeat(1_100_000)}`] }), headers: { 'content-type': 'application/json' } })
    t.equal(huge.statusCode, 413)
    check(t, huge, 'post', '/jobs')
  })

  await t.test('200 from healthz and readyz', async (t) => {
    for (const path of ['/healthz', '/readyz']) {
      const res = await inject('GET', path)
      t.equal(res.statusCode, 200)
      t.same(check(t, res, 'get', path), { status: 'ok' })
      check(t, await inject('HEAD', path), 'head', path)
    }
  })
})

t.test('with API keys: 401 without a valid key on every route but the probes; another tenant\'s job is 404', async (t) => {
  const keys = { alpha: 'alpha-key-0123456789abcdef', beta: 'beta-key-0123456789abcdef' }
  const { api } = await startTrawl(t, { worker: false, env: { API_KEYS: `alpha:${keys.alpha},beta:${keys.beta}` } })
  const as = (tenant: keyof typeof keys) => ({ authorization: `Bearer ${keys[tenant]}` })
  const inject = (method: string, url: string, extra: { payload?: object, headers?: Record<string, string> } = {}) =>
    api.app.inject({ method: method as 'GET', url, ...extra }) as Promise<Answer>
  const payload = { urls: ['http://a.test/'] }
  const job = json(check(t, await inject('POST', '/jobs', { payload, headers: as('alpha') }), 'post', '/jobs'))

  for (const [path, method, op] of operationsOf(spec.paths)) {
    if (!op.security?.length) continue
    const url = path.replace('{id}', job.id).replace('{index}', '0')
    const wrong: Array<Record<string, string>> = [{}, { authorization: 'Bearer not-a-key-0123456789' }, { authorization: `Basic ${keys.alpha}` }, { authorization: 'Bearer' }]
    for (const headers of wrong) {
      const res = await inject(method.toUpperCase(), url, { headers, payload: method === 'post' ? payload : undefined })
      t.equal(res.statusCode, 401, `${method.toUpperCase()} ${url} ${JSON.stringify(headers)}`)
      const problem = check(t, res, method, path) as { code: string } | undefined
      if (method !== 'head') t.equal(problem?.code, 'UNAUTHORIZED')
    }
  }
  for (const path of PROBES) {
    check(t, await inject('GET', path), 'get', path)
    check(t, await inject('HEAD', path), 'head', path)
  }
  const unknown = await inject('GET', '/nope')
  t.equal(unknown.statusCode, 401, 'an unknown path without a key is 401 too')

  const mine = json(check(t, await inject('GET', `/jobs/${job.id}`, { headers: as('alpha') }), 'get', '/jobs/{id}'))
  t.equal(mine.id, job.id, 'the owner reads its job')
  for (const [method, url, path] of [
    ['get', `/jobs/${job.id}`, '/jobs/{id}'],
    ['head', `/jobs/${job.id}`, '/jobs/{id}'],
    ['delete', `/jobs/${job.id}`, '/jobs/{id}'],
    ['get', `/jobs/${job.id}/results/0/content`, '/jobs/{id}/results/{index}/content'],
    ['head', `/jobs/${job.id}/results/0/content`, '/jobs/{id}/results/{index}/content'],
    ['get', `/jobs/${job.id}/events`, '/jobs/{id}/events']
  ] as const) {
    const res = await inject(method.toUpperCase(), url, { headers: as('beta') })
    t.equal(res.statusCode, 404, `beta: ${method.toUpperCase()} ${url}`)
    const problem = check(t, res, method, path) as { code: string } | undefined
    if (method !== 'head') t.equal(problem?.code, 'JOB_NOT_FOUND', 'exactly as a job that does not exist')
  }
  const still = json(check(t, await inject('GET', `/jobs/${job.id}?results=none`, { headers: as('alpha') }), 'get', '/jobs/{id}'))
  t.equal(still.state, 'queued', 'another tenant\'s DELETE did nothing')

  // Idempotency-Keys are per tenant: the same key names different jobs for alpha and beta.
  const key = `contract-${randomUUID()}`
  const a = json(check(t, await inject('POST', '/jobs', { payload, headers: { ...as('alpha'), 'idempotency-key': key } }), 'post', '/jobs'))
  const b = await inject('POST', '/jobs', { payload, headers: { ...as('beta'), 'idempotency-key': key } })
  t.equal(b.statusCode, 202, 'another tenant\'s key is separate')
  t.not(json(check(t, b, 'post', '/jobs')).id, a.id)
})

t.test('429: the per-tenant rate limit and the pending-URL cap', async (t) => {
  const { api } = await startTrawl(t, { worker: false, env: { RATE_LIMIT_PER_MINUTE: '2', MAX_PENDING_URLS_PER_TENANT: '2' } })
  const post = (urls: string[]) => api.app.inject({ method: 'POST', url: '/jobs', payload: { urls } }) as Promise<Answer>
  const first = await post(['http://a.test/1', 'http://a.test/2'])
  check(t, first, 'post', '/jobs')
  t.equal(first.statusCode, 202)
  t.equal(String(first.headers['x-ratelimit-limit']), '2')
  t.equal(String(first.headers['x-ratelimit-remaining']), '1')

  const full = await post(['http://a.test/3'])
  t.equal(full.statusCode, 429, 'no room for one more pending URL')
  t.equal((check(t, full, 'post', '/jobs') as { code: string }).code, 'TOO_MANY_PENDING_URLS')
  t.equal(String(full.headers['retry-after']), '5')
  t.equal(String(full.headers['x-ratelimit-remaining']), '0', 'the refused submission counted')

  const limited = await post(['http://a.test/4'])
  t.equal(limited.statusCode, 429)
  t.equal((check(t, limited, 'post', '/jobs') as { code: string }).code, 'RATE_LIMITED', 'the third submission in a minute')
  t.equal(String(limited.headers['x-ratelimit-remaining']), '0')
  const retryAfter = Number(limited.headers['retry-after'])
  t.ok(retryAfter >= 1 && retryAfter <= 60, `Retry-After ${retryAfter} is within the minute`)
})

t.test('503 with Retry-After while the process is overloaded, on every route but /healthz', async (t) => {
  // Any resident memory is past 1 MB: once under-pressure has sampled it, every request is shed.
  const { api } = await startTrawl(t, { worker: false, env: { OVERLOAD_MAX_RSS_MB: '1' } })
  const inject = (method: string, url: string) => api.app.inject({ method: method as 'GET', url, payload: method === 'POST' ? { urls: ['http://a.test/'] } : undefined }) as Promise<Answer>
  const shed = await until(async () => {
    const res = await inject('GET', '/readyz')
    return res.statusCode === 503 ? res : undefined
  }, 5000, 50)
  t.ok(shed, 'readyz sheds once the process is over its limit')
  for (const [path, method, op] of operationsOf(spec.paths)) {
    const url = path.replace('{id}', MISSING_ID).replace('{index}', '0')
    const res = await inject(method.toUpperCase(), url)
    if (path === '/healthz') {
      t.equal(res.statusCode, 200, `${method.toUpperCase()} ${path} is exempt`)
    } else {
      t.ok('503' in op.responses, `${method.toUpperCase()} ${path} documents 503`)
      t.equal(res.statusCode, 503, `${method.toUpperCase()} ${url}`)
      t.equal(res.headers['retry-after'], '5')
    }
    check(t, res, method, path)
  }
})

t.test('503 with Retry-After while Redis does not answer', async (t) => {
  const proxy = await startRedisProxy()
  t.teardown(proxy.close)
  const { api, prefix } = await startTrawl(t, { worker: false, env: { REDIS_URL: proxy.url } })
  const inject = (method: string, url: string, payload?: object) => api.app.inject({ method: method as 'GET', url, payload }) as Promise<Answer>
  const job = json(check(t, await inject('POST', '/jobs', { urls: ['http://a.test/'] }), 'post', '/jobs'))

  await proxy.cut()
  let ready = await inject('GET', '/readyz')
  for (let i = 0; ready.statusCode !== 503 && i < 50; i++) ready = await inject('GET', '/readyz')
  t.equal(ready.statusCode, 503, 'readyz')
  check(t, ready, 'get', '/readyz')
  const health = await inject('GET', '/healthz')
  t.equal(health.statusCode, 200, 'healthz stays 200 while the process runs')
  check(t, health, 'get', '/healthz')

  for (const [method, url, path, payload] of [
    ['post', '/jobs', '/jobs', { urls: ['http://a.test/'] }],
    ['get', `/jobs/${job.id}`, '/jobs/{id}', undefined],
    ['delete', `/jobs/${job.id}`, '/jobs/{id}', undefined],
    ['get', `/jobs/${job.id}/results/0/content`, '/jobs/{id}/results/{index}/content', undefined],
    ['get', `/jobs/${job.id}/events`, '/jobs/{id}/events', undefined],
    ['head', `/jobs/${job.id}`, '/jobs/{id}', undefined],
    ['head', `/jobs/${job.id}/results/0/content`, '/jobs/{id}/results/{index}/content', undefined],
    ['head', '/readyz', '/readyz', undefined]
  ] as const) {
    const started = Date.now()
    const res = await inject(method.toUpperCase(), url, payload)
    t.equal(res.statusCode, 503, `${method} ${url}`)
    t.ok(Date.now() - started < 2500, `answered within about 2 s (${Date.now() - started} ms)`)
    t.equal(res.headers['retry-after'], '2')
    check(t, res, method, path)
  }

  await proxy.restore()
  let back = await inject('GET', '/readyz')
  for (let i = 0; back.statusCode !== 200 && i < 100; i++) {
    await sleep(100)
    back = await inject('GET', '/readyz')
  }
  t.equal(back.statusCode, 200, 'ready again once Redis answers')
  // The finish watcher's connection resubscribes by itself (ioredis autoResubscribe), unguarded:
  // closing it while that SUBSCRIBE is in flight is an unhandled rejection. Let it finish first.
  const redis = new Redis(TEST_REDIS_URL)
  t.teardown(() => redis.disconnect())
  const subscribed = await until(async () => {
    const [, count] = await redis.pubsub('NUMSUB', finishedChannel(prefix)) as [string, number]
    return count > 0 || undefined
  }, 10_000, 50)
  t.ok(subscribed, 'the finish watcher is subscribed again')
})

t.test('shutdown: a request in progress is answered as usual, a wait at once', async (t) => {
  const { api } = await startTrawl(t, { worker: false })
  const base = await api.app.listen({ port: 0, host: '127.0.0.1' })
  const http = httpClient(t)
  const job = (await api.app.inject({ method: 'POST', url: '/jobs', payload: { urls: ['http://a.test/'] } })).json() as JobDocument
  // Close the server as soon as the request has arrived: it is in flight, and its wait has 30 s to go.
  api.app.server.once('request', () => { api.close().catch(() => {}) })
  const started = Date.now()
  const res = await answerOf(await http.fetch(`${base}/jobs/${job.id}?wait=30&results=none`))
  t.equal(res.statusCode, 200, 'not 503')
  t.equal(json(check(t, res, 'get', '/jobs/{id}')).state, 'queued', 'the job as it is')
  t.ok(Date.now() - started < 5000, `the wait ended with the server (${Date.now() - started} ms)`)
})

t.test('the validators can fail: wrong bodies and events are refused', async (t) => {
  const { doc, problem, stateEvent, resultEvent, callbackBody } = captured
  if (!doc || !problem || !stateEvent || !resultEvent || !callbackBody) {
    t.fail('the earlier tests captured a job document, a problem, a state event, a result event and a callback body')
    return
  }
  const validDoc = validatorAt('#/paths/~1jobs~1{id}/get/responses/200/content/application~1json/schema')
  t.ok(validDoc(doc), 'the real document passes', { errors: validDoc.errors })
  const docMutations: Array<[string, (d: Record<string, unknown>) => void]> = [
    ['an undocumented member', (d) => { d.extra = 1 }],
    ['an undocumented member in a result', (d) => { (d.results as Array<Record<string, unknown>>)[0]!.extra = 1 }],
    ['an undocumented member in counts', (d) => { (d.counts as Record<string, unknown>).queued = 0 }],
    ['an unknown job state', (d) => { d.state = 'done' }],
    ['a missing member', (d) => { delete d.counts }],
    ['a result without its error member', (d) => { delete (d.results as Array<Record<string, unknown>>)[0]!.error }],
    ['an unknown error code', (d) => { (d.results as Array<Record<string, unknown>>)[2]!.error = { code: 'BOGUS', message: 'x' } }],
    ['a date that is not a date-time', (d) => { d.createdAt = 'yesterday' }],
    ['an option of the wrong type', (d) => { (d.options as Record<string, unknown>).concurrency = '5' }],
    ['a null total', (d) => { d.total = null }],
    ['a malformed id', (d) => { d.id = 'job-1' }],
    ['a page without next', (d) => { delete (d.page as Record<string, unknown>).next }]
  ]
  for (const [name, mutate] of docMutations) {
    const copy = structuredClone(doc) as unknown as Record<string, unknown>
    mutate(copy)
    t.notOk(validDoc(copy), `a document with ${name} is refused`)
  }

  const validProblem = validatorAt('#/components/responses/BadRequest/content/application~1problem+json/schema')
  t.ok(validProblem(problem), 'the real problem passes', { errors: validProblem.errors })
  const problemMutations: Array<[string, (p: Record<string, unknown>) => void]> = [
    ['another code', (p) => { p.code = 'JOB_NOT_FOUND' }],
    ['an unknown code', (p) => { p.code = 'NOPE' }],
    ['another status', (p) => { p.status = 404 }],
    ['no detail', (p) => { delete p.detail }],
    ['an undocumented member', (p) => { p.stack = 'Error: at ...' }],
    ['a type that is not a trawl problem URI', (p) => { p.type = 'about:blank' }],
    ['an error entry without a message', (p) => { p.errors = [{ path: '/urls' }] }]
  ]
  for (const [name, mutate] of problemMutations) {
    const copy = structuredClone(problem)
    mutate(copy)
    t.notOk(validProblem(copy), `a problem with ${name} is refused`)
  }

  // Events: the fields of the event, and the JSON of its data.
  const validEvent = validatorAt('#/components/schemas/JobEvent')
  const stateData = validatorAt(eventVariants.get('state') ?? '')
  const resultData = validatorAt(eventVariants.get('result') ?? '')
  t.ok(validEvent(stateEvent) && validEvent(resultEvent), 'the real events pass')
  t.ok(stateData(JSON.parse(stateEvent.data)) && resultData(JSON.parse(resultEvent.data)), 'and their data')
  const eventMutations: Array<[string, SseEvent]> = [
    ['an unknown event name', { ...stateEvent, event: 'progress' }],
    ['no id', { event: 'state', data: stateEvent.data }],
    ['an id that is not a stream id', { ...stateEvent, id: 'abc' }],
    ['a result with the snapshot id', { ...resultEvent, id: '0-0' }],
    ['an extra field', { ...resultEvent, retry: '10' } as SseEvent]
  ]
  for (const [name, event] of eventMutations) t.notOk(validEvent(event), `an event with ${name} is refused`)
  const stateJson = JSON.parse(stateEvent.data) as Record<string, unknown>
  t.notOk(stateData({ ...stateJson, results: [] }), 'state data with results is refused: it is the document without them')
  t.notOk(stateData({ ...stateJson, page: { offset: 0, limit: 100, next: null } }), 'state data with page is refused')
  t.notOk(resultData({ ...JSON.parse(resultEvent.data), contentUrl: undefined }), 'a result without contentUrl is refused')

  const validCallback = validatorAt('#/webhooks/jobFinished/post/requestBody/content/application~1json/schema')
  t.ok(validCallback(callbackBody), 'the real callback body passes')
  const callbackMutations: Array<[string, Record<string, unknown>]> = [
    ['results', { ...callbackBody, results: [] }],
    ['a state that is not final', { ...callbackBody, state: 'running' }],
    ['no finishedAt', { ...callbackBody, finishedAt: null }],
    ['no callback block', { ...callbackBody, callback: null }]
  ]
  for (const [name, body] of callbackMutations) t.notOk(validCallback(body), `a callback body with ${name} is refused`)
})

t.test('every answer openapi.yaml documents was produced and checked', async (t) => {
  for (const answer of documentedAnswers()) t.ok(seen.has(answer), answer)
})
