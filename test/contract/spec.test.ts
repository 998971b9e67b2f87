import t from 'tap'
import { z } from 'zod'
import { configSchema } from '../../src/config.js'
import { problemCatalogue, problemType, type ProblemCode } from '../../src/http/problems.js'
import {
  callbackStatusSchema, countsSchema, DEFAULT_OPTIONS, JOB_STATES, jobDocumentSchema,
  jobOptionsDocSchema, jobOptionsSchema, jobSummarySchema, MAX_URL_LENGTH, pageSchema, RESULT_STATES,
  resultErrorSchema, resultItemSchema, submitBodySchema
} from '../../src/jobs/schemas.js'
import { isPagePath } from '../../src/dashboard/pages.js'
import { RESULT_ERROR_CODES } from '../../src/jobs/result-codes.js'
import { jobListSchema } from '../../src/jobs/documents.js'
import { LIST_LIMIT } from '../../src/jobs/listing.js'
import { PRODUCERS } from '../helpers/contract/answers.js'
import { registeredRoutes } from '../helpers/contract/check.js'
import { OPERATOR_ROUTES, PROBES } from '../helpers/contract/service.js'
import {
  allNodes, deref, documentedAnswers, documentedOperations, eventVariants, operationsOf, pointer, props, refsIn,
  schemas, spec, toFastifyPath, type Schema
} from '../helpers/contract/spec.js'
import { startTrawl } from '../helpers/trawl.js'

// openapi.yaml against the code: the catalogues it copies and the routes Fastify serves. The
// answers themselves are produced for real by the other files of test/contract/, each test on
// its own; the last test here holds their list (helpers/contract/answers.ts) to the document.

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

t.test('security: every route but the probes and the pages needs the bearer API key and documents 401; /metrics an operator key', async (t) => {
  t.match(spec.components.securitySchemes.apiKey, { type: 'http', scheme: 'bearer' })
  t.match(spec.components.securitySchemes.adminKey, { type: 'http', scheme: 'bearer' })
  t.equal(spec.security, undefined, 'no document-wide requirement: each operation says its own')
  for (const [path, method, op] of operationsOf(spec.paths)) {
    const name = `${method.toUpperCase()} ${path}`
    if (PROBES.has(path) || isPagePath(path)) {
      t.same(op.security ?? [], [], `${name} needs no key`)
      t.notOk('401' in op.responses, `${name} documents no 401`)
    } else if (OPERATOR_ROUTES.has(path)) {
      t.same(op.security, [{ adminKey: [] }], `${name} needs an operator key (ADMIN_API_KEYS), not a tenant's`)
      t.ok('401' in op.responses, `${name} documents 401`)
    } else {
      t.same(op.security, [{ apiKey: [] }], `${name} needs the API key`)
      t.ok('401' in op.responses, `${name} documents 401`)
    }
  }
})

t.test('the catalogues in openapi.yaml are the ones in the code', async (t) => {
  const codes = Object.keys(problemCatalogue) as ProblemCode[]
  const problemCode = deref(schemas.ProblemCode ?? {})
  t.same(problemCode.enum, codes, 'ProblemCode enum = keys of problemCatalogue (src/http/problems.ts), in order')
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

  // The query of GET /jobs/{id} (src/jobs/routes.ts readQuery), parameter by parameter.
  const params = spec.components.parameters
  t.same(params.Wait?.schema, { type: 'number', minimum: 0, maximum: 60, default: 0 }, 'parameter wait')
  t.same(params.Offset?.schema, { type: 'integer', minimum: 0, maximum: 100_000_000, default: 0 }, 'parameter offset')
  t.same(params.Limit?.schema, { type: 'integer', minimum: 1, maximum: 1000, default: 100 }, 'parameter limit')
  t.same(params.Results?.schema, { type: 'string', enum: ['none', 'page'], default: 'page' }, 'parameter results')
  t.same(params.JobId?.schema, { type: 'string' }, 'parameter id: any string (one that is not a job id is a job that does not exist)')
  // The query of GET /jobs (routes.ts listQuery, listing.ts LIST_LIMIT).
  t.same(params.ListLimit?.schema, { type: 'integer', minimum: 1, maximum: LIST_LIMIT.max, default: LIST_LIMIT.default }, 'parameter limit of the list')
  t.same(params.ListState?.schema, { type: 'array', minItems: 1, maxItems: 20, items: { $ref: '#/components/schemas/JobState' } }, 'parameter state of the list')
  t.same(params.Cursor?.schema, { type: 'string' }, 'parameter cursor: opaque')

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
    ['ResolvedOptions', props('Options'), deref(schemas.ResolvedOptions ?? {}).required as string[], jobOptionsDocSchema],
    ['JobList', props('JobList'), deref(schemas.JobList ?? {}).required as string[], jobListSchema]
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
  t.same(schemas.JobListItem?.allOf, [{ $ref: '#/components/schemas/JobSummary' }], 'JobListItem is JobSummary')
  t.notOk('properties' in (schemas.JobListItem ?? {}), 'JobListItem adds no member')
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
  // The pages for people (dashboard, reference, admin) and their assets need not be in the
  // document; those it lists (GET / and GET /docs) are held to being served like any route.
  for (const route of served) if (!isPagePath(route.split(' ')[1] ?? '')) t.ok(documented.has(route), `served ${route} is documented`)
  for (const page of ['GET /', 'GET /docs']) t.ok(documented.has(page), `${page} is documented`)
  for (const route of documented) {
    t.ok(served.has(route), `documented ${route} is served`)
    const [method = '', url = ''] = route.split(' ')
    t.ok(api.app.hasRoute({ method: method as 'GET', url }), `hasRoute(${route})`)
  }
})

t.test('every answer openapi.yaml documents is produced and checked by some contract test', async (t) => {
  const promised = new Set<string>(Object.values(PRODUCERS).flat())
  const documented = documentedAnswers()
  for (const answer of documented) t.ok(promised.has(answer), answer)
  for (const answer of promised) t.ok(documented.includes(answer), `${answer} (promised) is documented`)
})
