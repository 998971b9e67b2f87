import { readFileSync } from 'node:fs'
import { connect, createServer, type Socket } from 'node:net'
import { join } from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import { Ajv2020, type ValidateFunction } from 'ajv/dist/2020.js'
import addFormatsModule from 'ajv-formats'
import type { FastifyInstance, LightMyRequestResponse } from 'fastify'
import t, { type Test } from 'tap'
import { parse } from 'yaml'
import { z } from 'zod'
import { configSchema } from '../../src/config.js'
import { problemCatalogue, problemType, type ProblemCode } from '../../src/errors.js'
import {
  callbackStatusSchema, countsSchema, DEFAULT_OPTIONS, ERROR_CODES, JOB_STATES, jobDocumentSchema,
  jobOptionsDocSchema, jobOptionsSchema, jobSummarySchema, MAX_URL_LENGTH, pageSchema, RESULT_STATES,
  resultErrorSchema, resultItemSchema, submitBodySchema, type JobDocument
} from '../../src/jobs/schemas.js'
import { startGateServer } from '../helpers/gate-server.js'
import { TEST_REDIS_URL } from '../helpers/redis.js'
import { startSeedSite } from '../helpers/seed.js'
import { ROOT, startTrawl } from '../helpers/trawl.js'

// openapi.yaml against the code: the catalogues it copies, the routes Fastify serves, and every
// answer of every route, produced for real against a live API, worker and Redis. Each real
// answer is held to the document: its method, path and status are documented, its media type is
// one documented for that status, the documented headers are there, and the body validates
// against the documented schema. A last test fails if any documented answer was never produced.

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
  content?: Record<string, { schema?: Schema }>
}

interface Operation {
  operationId?: string
  responses: Record<string, ResponseObject>
}

const METHODS = ['get', 'put', 'post', 'delete', 'options', 'head', 'patch', 'trace'] as const
type Method = typeof METHODS[number]
type PathItem = Partial<Record<Method, Operation>> & { parameters?: unknown[] }

interface OpenApi {
  openapi: string
  paths: Record<string, PathItem>
  components: {
    schemas: Record<string, Schema>
    responses: Record<string, ResponseObject>
    headers: Record<string, HeaderObject>
    parameters: Record<string, { name: string, in: string, schema: Schema }>
  }
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
    ...Object.values(doc.paths).flatMap((item) => METHODS.flatMap((m) => Object.values(item[m]?.responses ?? {})))
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

const escape = (segment: string) => segment.replaceAll('~', '~0').replaceAll('/', '~1')

/** `/jobs/{id}` -> `/jobs/:id` */
const toFastifyPath = (path: string) => path.replaceAll(/\{([^}]+)\}/g, ':$1')

/** Every documented operation as `METHOD /path/{param}`. */
function documentedOperations (): string[] {
  return Object.entries(spec.paths).flatMap(([path, item]) => METHODS.filter((m) => item[m]).map((m) => `${m.toUpperCase()} ${path}`))
}

/** Every documented answer (method, path, status) except `default`. */
function documentedAnswers (): string[] {
  return Object.entries(spec.paths).flatMap(([path, item]) => METHODS.flatMap((m) => {
    const op = item[m]
    return op ? Object.keys(op.responses).filter((s) => s !== 'default').map((s) => `${m.toUpperCase()} ${path} ${s}`) : []
  }))
}

/** The answers the tests have checked so far, as `METHOD /path/{param} status`. */
const seen = new Set<string>()

const mediaTypeOf = (res: LightMyRequestResponse) => String(res.headers['content-type'] ?? '').split(';')[0]?.trim().toLowerCase() ?? ''
const isJson = (mediaType: string) => mediaType === 'application/json' || mediaType.endsWith('+json')

/**
 * Checks one real answer against the operation `method path` of openapi.yaml and returns its
 * parsed JSON body (undefined when it has none).
 */
function check (t: Test, res: LightMyRequestResponse, method: Method, path: string): unknown {
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
  const ref = documented.$ref ?? `#/paths/${escape(path)}/${method}/responses/${status}`
  return checkResponse(t, res, ref, label)
}

/** Checks one real answer against the response object at `ref` (e.g. `#/components/responses/RouteNotFound`). */
function checkResponse (t: Test, res: LightMyRequestResponse, ref: string, label = ref): unknown {
  let at = ref
  let response = pointer(spec, at) as ResponseObject
  while (response.$ref) {
    at = response.$ref
    response = pointer(spec, at) as ResponseObject
  }
  for (const [name, raw] of Object.entries(response.headers ?? {})) {
    const header = deref(raw)
    const value = res.headers[name.toLowerCase()]
    if (header.required) t.ok(value !== undefined, `${label}: header ${name} is present`)
    if (value !== undefined && header.schema) {
      const validate = headerAjv.compile(header.schema)
      t.ok(validate(String(value)), `${label}: header ${name} (${String(value)}) matches its schema`, { errors: validate.errors })
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

const MISSING_ID = 'j_01JAAAAAAAAAAAAAAAAAAAAAAA'
const LONG_ID = `j_${'A'.repeat(70)}`
const schemas = spec.components.schemas
const props = (name: string) => (deref(schemas[name] ?? {}).properties ?? {}) as Record<string, Schema>
const json = (body: unknown) => body as JobDocument

// Bodies captured from real answers, reused to show that the validators can fail.
const captured: { doc?: JobDocument, problem?: Record<string, unknown> } = {}

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

  t.same(props('ResultError').code?.enum, [...ERROR_CODES], 'ResultError.code enum = ERROR_CODES')
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
  t.same(params.Offset?.schema, { type: 'integer', minimum: 0, default: 0 }, 'parameter offset')
  t.same(params.Limit?.schema, { type: 'integer', minimum: 1, maximum: 1000, default: 100 }, 'parameter limit')
  t.same(params.Results?.schema, { type: 'string', enum: ['none', 'page'], default: 'page' }, 'parameter results')
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
})

t.test('the routes Fastify serves are the routes openapi.yaml documents', async (t) => {
  const { api } = await startTrawl(t, { worker: false })
  const served = registeredRoutes(t, api.app)
  t.ok(served.size >= 8, `printRoutes was read (${[...served].join(', ')})`)
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
  // CALLBACK_SECRET lets a job carry a callback.
  const { api } = await startTrawl(t, { env: { MAX_URLS_PER_JOB: '20', CALLBACK_SECRET: 'contract-test-secret-0123456789' } })
  const inject = (method: string, url: string, extra: { payload?: string | object, headers?: Record<string, string> } = {}) =>
    api.app.inject({ method: method as 'GET', url, ...extra }) as Promise<LightMyRequestResponse>
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
    // jobs.ts reads the answer after enqueueing, so a quick worker is seen about once in 200.
    const race = job.state === 'queued' ? {} : { todo: 'routes/jobs.ts:60 reads the 202 document after enqueueLanes' }
    t.equal(job.state, 'queued', race)
    t.equal(res.headers.location, `/jobs/${job.id}`)
    t.same(job.results?.map((r) => r.state), ['pending', 'pending', 'pending', 'pending'], race)

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

  await t.test('a job with a callback shows its delivery state', async (t) => {
    const payload = { urls: [gate.url('/fast/a')], callbackUrl: gate.url('/fast/callback') }
    t.ok(validSubmission(payload), 'the payload matches JobSubmission', { errors: validSubmission.errors })
    const job = json(check(t, await inject('POST', '/jobs', { payload }), 'post', '/jobs'))
    t.match(job.callback, { url: payload.callbackUrl })
    json(check(t, await inject('GET', `/jobs/${job.id}?wait=30&results=none`), 'get', '/jobs/{id}'))
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

  await t.test('400: each bad field is listed, and the documented request schema refuses it too', async (t) => {
    // A JSON pointer to the whole body is "" (RFC 6901); "/" would name a member called "".
    const rootPointer = 'error-handler.ts:37 sends "/" for the whole body and does not escape ~ and / (RFC 6901)'
    const cases: Array<{ payload: unknown, paths: string[], schemaRefuses: boolean, todo?: string }> = [
      { payload: { urls: [] }, paths: ['/urls'], schemaRefuses: true },
      { payload: {}, paths: ['/urls'], schemaRefuses: true },
      { payload: ['http://a.test/'], paths: [''], schemaRefuses: true, todo: rootPointer },
      { payload: { urls: ['http://a.test/', 'not a url', 'ftp://x.test/f'] }, paths: ['/urls/1', '/urls/2'], schemaRefuses: true },
      { payload: { urls: [`http://a.test/${'x'.repeat(2100)}`] }, paths: ['/urls/0'], schemaRefuses: true },
      { payload: { urls: ['http://a.test/'], extra: 1 }, paths: [''], schemaRefuses: true, todo: rootPointer },
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
      { payload: { urls: ['http://a.test/'], options: { headers: { 'a/b': 'x' } } }, paths: ['/options/headers/a~1b'], schemaRefuses: true, todo: rootPointer },
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
      t.same(problem?.errors?.map((e) => e.path).sort(), c.paths.sort(), 'errors name the bad fields', c.todo ? { todo: c.todo } : {})
      if (c.schemaRefuses) t.notOk(validSubmission(c.payload), 'JobSubmission refuses it too')
    }
    captured.problem = check(t, await inject('POST', '/jobs', { payload: { urls: [] } }), 'post', '/jobs') as Record<string, unknown>

    for (const [raw, name] of [['{"urls": [', 'malformed JSON'], ['', 'empty body']] as const) {
      const res = await inject('POST', '/jobs', { payload: raw, headers: { 'content-type': 'application/json' } })
      const problem = check(t, res, 'post', '/jobs') as { code: string }
      t.equal(res.statusCode, 400, name)
      t.equal(problem.code, 'VALIDATION_FAILED')
    }

    for (const [url, path, method] of [
      [`/jobs/${MISSING_ID}?limit=5000`, '/querystring/limit', 'get'],
      [`/jobs/${MISSING_ID}?limit=0`, '/querystring/limit', 'get'],
      [`/jobs/${MISSING_ID}?offset=-1`, '/querystring/offset', 'get'],
      [`/jobs/${MISSING_ID}?wait=61`, '/querystring/wait', 'get'],
      [`/jobs/${MISSING_ID}?results=all`, '/querystring/results', 'get'],
      [`/jobs/${LONG_ID}`, '/params/id', 'get'],
      [`/jobs/${LONG_ID}`, '/params/id', 'delete']
    ] as const) {
      const res = await inject(method.toUpperCase(), url)
      const problem = check(t, res, method, '/jobs/{id}') as { errors?: Array<{ path: string }> }
      t.equal(res.statusCode, 400, `${method} ${url}`)
      t.same(problem?.errors?.map((e) => e.path), [path])
    }
    check(t, await inject('HEAD', `/jobs/${MISSING_ID}?limit=5000`), 'head', '/jobs/{id}')
    for (const url of [`/jobs/${MISSING_ID}/results/abc/content`, `/jobs/${MISSING_ID}/results/-1/content`, `/jobs/${LONG_ID}/results/0/content`]) {
      const res = await inject('GET', url)
      check(t, res, 'get', '/jobs/{id}/results/{index}/content')
      t.equal(res.statusCode, 400, url)
    }
    check(t, await inject('HEAD', `/jobs/${MISSING_ID}/results/abc/content`), 'head', '/jobs/{id}/results/{index}/content')
  })

  await t.test('404 for unknown jobs and for paths no route serves', async (t) => {
    for (const [method, url, path, code] of [
      ['get', `/jobs/${MISSING_ID}`, '/jobs/{id}', 'JOB_NOT_FOUND'],
      ['get', '/jobs/not-an-id', '/jobs/{id}', 'JOB_NOT_FOUND'],
      ['delete', `/jobs/${MISSING_ID}`, '/jobs/{id}', 'JOB_NOT_FOUND'],
      ['get', `/jobs/${MISSING_ID}/results/0/content`, '/jobs/{id}/results/{index}/content', 'JOB_NOT_FOUND']
    ] as const) {
      const res = await inject(method.toUpperCase(), url)
      t.equal(res.statusCode, 404, `${method} ${url}`)
      t.equal((check(t, res, method, path) as { code: string }).code, code)
    }
    check(t, await inject('HEAD', `/jobs/${MISSING_ID}`), 'head', '/jobs/{id}')
    check(t, await inject('HEAD', `/jobs/${MISSING_ID}/results/0/content`), 'head', '/jobs/{id}/results/{index}/content')
    for (const [method, url] of [['GET', '/nope'], ['PUT', '/jobs'], ['GET', '/jobs'], ['POST', `/jobs/${MISSING_ID}`], ['PATCH', '/healthz']] as const) {
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

t.test('503 with Retry-After while Redis does not answer', async (t) => {
  const proxy = await startRedisProxy()
  t.teardown(proxy.close)
  const { api } = await startTrawl(t, { worker: false, env: { REDIS_URL: proxy.url } })
  const inject = (method: string, url: string, payload?: object) => api.app.inject({ method: method as 'GET', url, payload }) as Promise<LightMyRequestResponse>
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
    ['head', `/jobs/${job.id}`, '/jobs/{id}', undefined],
    ['head', `/jobs/${job.id}/results/0/content`, '/jobs/{id}/results/{index}/content', undefined],
    ['head', '/readyz', '/readyz', undefined]
  ] as const) {
    const started = Date.now()
    const res = await inject(method.toUpperCase(), url, payload)
    t.equal(res.statusCode, 503, `${method} ${url}`)
    t.ok(Date.now() - started < 2500, `answered within about 2 s (${Date.now() - started} ms)`)
    check(t, res, method, path)
  }

  await proxy.restore()
  let back = await inject('GET', '/readyz')
  for (let i = 0; back.statusCode !== 200 && i < 100; i++) {
    await sleep(100)
    back = await inject('GET', '/readyz')
  }
  t.equal(back.statusCode, 200, 'ready again once Redis answers')
})

t.test('the validators can fail: wrong bodies are refused', async (t) => {
  const doc = captured.doc
  const problem = captured.problem
  if (!doc || !problem) {
    t.fail('the earlier tests captured a job document and a problem')
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
})

t.test('every answer openapi.yaml documents was produced and checked', async (t) => {
  for (const answer of documentedAnswers()) t.ok(seen.has(answer), answer)
})
