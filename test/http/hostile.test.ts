import { once } from 'node:events'
import { connect } from 'node:net'
import type { AddressInfo } from 'node:net'
import { Ajv2020 } from 'ajv/dist/2020.js'
import type { FastifyInstance, LightMyRequestResponse } from 'fastify'
import { Redis } from 'ioredis'
import t, { type Test } from 'tap'
import { problemCatalogue } from '../../src/http/problems.js'
import { eventually } from '../helpers/eventually.js'
import { startGateServer } from '../helpers/gate-server.js'
import { Fuzzer, inline, loadSpec, specPath, type Schema } from '../helpers/openapi-fuzz.js'
import { TEST_REDIS_URL, testPrefix } from '../helpers/redis.js'
import { injectedProblem, keysUnder } from '../helpers/security.js'
import { spawnTrawl, startTrawl, testEnv, waitForLog } from '../helpers/trawl.js'

// Hostile requests: oversize, malformed and malicious bodies, odd query strings and paths. Each
// gets a 4xx problem (or, if it is in fact valid, is accepted), never a 5xx, never a stack trace,
// and always the security headers.

const KEY_A = 'tenant-a-key-7d1f0c9e5b2a4c68'
const AS_A = { authorization: `Bearer ${KEY_A}` }
const CODES = new Set(Object.keys(problemCatalogue))
const LEAK = /\bat [\w.<>]+ \(|node_modules|\/work\/|\.ts:\d+|\.js:\d+|Error: |stack|ioredis|ReplyError|ERR /

/** Everything wrong with one answer, as text (empty when nothing is). */
function faults (res: LightMyRequestResponse, expect: { refuse?: boolean } = {}): string[] {
  const out: string[] = []
  if (res.statusCode >= 500) out.push(`a ${res.statusCode}`)
  if (expect.refuse === true && res.statusCode < 400) out.push(`accepted with ${res.statusCode}, should be refused`)
  if (LEAK.test(res.body)) out.push(`internal text in the body: ${res.body.slice(0, 200)}`)
  if (res.headers['x-content-type-options'] !== 'nosniff') out.push('no X-Content-Type-Options: nosniff')
  if (res.statusCode >= 400) {
    if (!/^application\/problem\+json/.test(String(res.headers['content-type']))) out.push(`content-type ${res.headers['content-type']}`)
    let body: Record<string, unknown> = {}
    try {
      body = res.json()
    } catch {
      out.push('the problem is not JSON')
    }
    if (typeof body.type !== 'string' || !String(body.type).startsWith('urn:trawl:problem:')) out.push(`type ${String(body.type)}`)
    if (typeof body.title !== 'string' || body.title === '') out.push('no title')
    if (body.status !== res.statusCode) out.push(`status ${String(body.status)} in the body`)
    if (typeof body.detail !== 'string') out.push('no detail')
    if (typeof body.code !== 'string' || !CODES.has(body.code)) out.push(`code ${String(body.code)}`)
  }
  return out
}

function noFaults (t: Test, res: LightMyRequestResponse, what: string, expect: { refuse?: boolean } = {}) {
  t.same(faults(res, expect), [], `${what}: ${res.statusCode}${res.statusCode >= 400 ? ` ${res.json<{ code: string }>().code}` : ''}`)
}

const post = (app: FastifyInstance, raw: string, headers: Record<string, string> = {}) =>
  app.inject({ method: 'POST', url: '/jobs', headers: { 'content-type': 'application/json', ...headers }, payload: raw })

t.test('an oversize body is refused with 413, whatever it claims', async (t) => {
  const { api } = await startTrawl(t, { worker: false })
  const limit = api.app.initialConfig.bodyLimit ?? 0
  t.ok(limit >= 10_000 * 2048, `the limit leaves room for 10,000 URLs of 2,048 characters (${limit} bytes)`)
  const over = JSON.stringify({ urls: [`http://a.test/${'x'.repeat(limit)}`] })
  injectedProblem(t, await post(api.app, over), { status: 413, code: 'PAYLOAD_TOO_LARGE' }, 'a body past the limit')

  // Over a socket: a Content-Length past the limit is refused before a byte of the body is sent.
  await api.app.listen({ port: 0, host: '127.0.0.1' })
  const socket = connect((api.app.server.address() as AddressInfo).port, '127.0.0.1')
  t.teardown(() => socket.destroy())
  await once(socket, 'connect')
  socket.write(`POST /jobs HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\ncontent-length: ${limit + 1}\r\n\r\n`)
  let answer = ''
  socket.on('data', (d: Buffer) => { answer += d.toString() })
  await once(socket, 'end')
  t.match(answer, /^HTTP\/1\.1 413 /, 'a 413 for the headers alone')
  t.match(answer, /content-type: application\/problem\+json/i, 'as a problem')
  t.match(answer, /"code":"PAYLOAD_TOO_LARGE"/)
})

t.test('malformed HTTP is refused with a 4xx', async (t) => {
  const { api } = await startTrawl(t, { worker: false })
  await api.app.listen({ port: 0, host: '127.0.0.1' })
  const port = (api.app.server.address() as AddressInfo).port
  const requests: Array<[string, string]> = [
    ['a header past 16 KiB', `GET /healthz HTTP/1.1\r\nhost: x\r\nx-big: ${'a'.repeat(20_000)}\r\n\r\n`],
    ['a header line without a colon', 'GET /healthz HTTP/1.1\r\nhost: x\r\nnot a header\r\n\r\n'],
    ['Transfer-Encoding and Content-Length together', 'POST /jobs HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\ntransfer-encoding: chunked\r\ncontent-length: 5\r\n\r\n0\r\n\r\n'],
    ['a NUL in a header value', 'GET /jobs/x HTTP/1.1\r\nhost: x\r\nauthorization: Bearer a\u0000b\r\n\r\n']
  ]
  for (const [name, request] of requests) {
    const socket = connect(port, '127.0.0.1')
    await once(socket, 'connect')
    let answer = ''
    socket.on('data', (d: Buffer) => { answer += d.toString() })
    const closed = once(socket, 'close')
    socket.write(request)
    await closed
    t.match(answer, /^HTTP\/1\.1 4\d\d /, `${name}: a 4xx`)
    t.match(answer, /content-type: application\/problem\+json/i, `${name}: as a problem`)
    t.match(answer, /"code":"VALIDATION_FAILED"/, `${name}: VALIDATION_FAILED`)
    t.match(answer, /x-content-type-options: nosniff/i, `${name}: not to be sniffed`)
  }
})

t.test('malformed and malicious JSON gets a 4xx problem, never a 5xx', async (t) => {
  const { api, prefix } = await startTrawl(t, { worker: false, env: { RATE_LIMIT_PER_MINUTE: '100000' } })
  const app = api.app
  const redis = new Redis(TEST_REDIS_URL)
  t.teardown(() => redis.disconnect())
  const url = 'http://127.0.0.1:9/a'
  const refused: Array<[string, string]> = [
    ['__proto__ at the top', `{"urls":["${url}"],"__proto__":{"polluted":"yes"}}`],
    ['__proto__ in options', `{"urls":["${url}"],"options":{"__proto__":{"polluted":"yes"}}}`],
    ['__proto__ in headers', `{"urls":["${url}"],"options":{"headers":{"__proto__":{"polluted":"yes"}}}}`],
    ['__proto__ as a header with a string', `{"urls":["${url}"],"options":{"headers":{"__proto__":"yes"}}}`],
    ['__proto__ in a URL item', '{"urls":[{"__proto__":{"polluted":"yes"}}]}'],
    ['constructor.prototype at the top', `{"urls":["${url}"],"constructor":{"prototype":{"polluted":"yes"}}}`],
    ['constructor.prototype in options', `{"urls":["${url}"],"options":{"constructor":{"prototype":{"polluted":"yes"}}}}`],
    ['constructor.prototype in headers', `{"urls":["${url}"],"options":{"headers":{"constructor":{"prototype":{"polluted":"yes"}}}}}`],
    ['arrays nested 100,000 deep', `{"urls":${'['.repeat(100_000)}${']'.repeat(100_000)}}`],
    ['objects nested 50,000 deep', `{"urls":["${url}"],"options":${'{"a":'.repeat(50_000)}1${'}'.repeat(50_000)}}`],
    ['a number past double range', `{"urls":["${url}"],"options":{"concurrency":1e400}}`],
    ['a 400-digit number', `{"urls":["${url}"],"options":{"maxBytes":${'9'.repeat(400)}}}`],
    ['a huge timeout', `{"urls":["${url}"],"options":{"timeoutMs":1e20}}`],
    ['a negative retry count', `{"urls":["${url}"],"options":{"retries":-1}}`],
    ['a fractional concurrency', `{"urls":["${url}"],"options":{"concurrency":2.5}}`],
    ['urls as a string', `{"urls":"${url}"}`],
    ['urls as null', '{"urls":null}'],
    ['urls as an object', `{"urls":{"0":"${url}"}}`],
    ['a number among the urls', `{"urls":["${url}",42]}`],
    ['options as an array', `{"urls":["${url}"],"options":[]}`],
    ['headers as an array', `{"urls":["${url}"],"options":{"headers":[["a","b"]]}}`],
    ['a header value that is a number', `{"urls":["${url}"],"options":{"headers":{"x-a":1}}}`],
    ['keepContent as a string', `{"urls":["${url}"],"options":{"keepContent":"true"}}`],
    ['concurrency as a string', `{"urls":["${url}"],"options":{"concurrency":"5"}}`],
    ['callbackUrl as a number', `{"urls":["${url}"],"callbackUrl":5}`],
    ['null', 'null'],
    ['a string', '"hello"'],
    ['a number', '42'],
    ['true', 'true'],
    ['an empty object', '{}'],
    ['an empty body', ''],
    ['a duplicate key whose last value is bad', `{"urls":["${url}"],"urls":"x"}`],
    ['a NUL in the host', JSON.stringify({ urls: ['http://a\u0000b.test/'] })],
    ['a NUL in the scheme', JSON.stringify({ urls: ['ht\u0000tp://a.test/'] })],
    ['javascript:', JSON.stringify({ urls: ['javascript:alert(1)'] })],
    ['file:', JSON.stringify({ urls: ['file:///etc/passwd'] })],
    ['data:', JSON.stringify({ urls: ['data:text/plain,hi'] })],
    ['gopher:', JSON.stringify({ urls: ['gopher://127.0.0.1:6379/_FLUSHALL'] })],
    ['a URL of 2,049 characters', JSON.stringify({ urls: [`http://a.test/${'x'.repeat(2049 - 14)}`] })],
    ['10,001 URLs', JSON.stringify({ urls: Array.from({ length: 10_001 }, (_, i) => `http://a.test/${i}`) })],
    ['51 headers', JSON.stringify({ urls: [url], options: { headers: Object.fromEntries(Array.from({ length: 51 }, (_, i) => [`x-h${i}`, 'v'])) } })],
    ['a CR LF in a header value', JSON.stringify({ urls: [url], options: { headers: { 'x-a': 'b\r\nhost: evil' } } })],
    ['a NUL in a header value', JSON.stringify({ urls: [url], options: { headers: { 'x-a': 'b\u0000' } } })],
    ['a header name with a space', JSON.stringify({ urls: [url], options: { headers: { 'x a': 'b' } } })],
    ['Transfer-Encoding', JSON.stringify({ urls: [url], options: { headers: { 'Transfer-Encoding': 'chunked' } } })]
  ]
  const before = (await keysUnder(redis, `${prefix}:job:*:meta`)).length
  for (const [name, raw] of refused) noFaults(t, await post(app, raw), name, { refuse: true })
  t.equal((await keysUnder(redis, `${prefix}:job:*:meta`)).length, before, 'none of them created a job')

  // Odd but valid: the WHATWG parser makes a URL of them, so either answer is fine, but not a 5xx.
  const odd: Array<[string, string]> = [
    ['a NUL in the path', JSON.stringify({ urls: ['http://a.test/x\u0000y'] })],
    ['a lone surrogate in the path', JSON.stringify({ urls: ['http://a.test/\ud800'] })],
    ['an internationalised host', JSON.stringify({ urls: ['http://\u4f8b\u3048.\u30c6\u30b9\u30c8/\u30d1\u30b9'] })],
    ['bidi and zero-width characters', JSON.stringify({ urls: ['http://a.test/\u202e\u200bx'] })],
    ['a tab and a newline inside', JSON.stringify({ urls: ['http://a.te\tst/a\nb'] })],
    ['a loopback written in hex', JSON.stringify({ urls: ['http://0x7f.1/'] })],
    ['a URL of 2,048 characters', JSON.stringify({ urls: [`http://a.test/${'x'.repeat(2048 - 14)}`] })],
    ['a byte order mark', `\ufeff${JSON.stringify({ urls: [url] })}`],
    ['a header named constructor', JSON.stringify({ urls: [url], options: { headers: { constructor: 'x' } } })],
    ['a header named __proto__-like', JSON.stringify({ urls: [url], options: { headers: { 'x-__proto__': 'x' } } })]
  ]
  for (const [name, raw] of odd) noFaults(t, await post(app, raw), name)

  // Other media types and encodings.
  const body = JSON.stringify({ urls: [url] })
  const types: Array<[string, string]> = [['text/plain', 'text/plain'], ['form-encoded', 'application/x-www-form-urlencoded'], ['multipart', 'multipart/form-data; boundary=x'], ['a charset of UTF-16', 'application/json; charset=utf-16'], ['no type', '']]
  for (const [name, type] of types) {
    noFaults(t, await post(app, body, { 'content-type': type }), `content-type ${name}`)
  }
  const polluted = ({} as Record<string, unknown>).polluted
  t.equal(polluted, undefined, 'Object.prototype was not polluted')
})

t.test('odd query strings and paths get 4xx problems, never a 5xx', async (t) => {
  const { api } = await startTrawl(t, { worker: false })
  const app = api.app
  const job = (await post(app, JSON.stringify({ urls: ['http://127.0.0.1:9/a'] }))).json<{ id: string }>()
  await app.inject({ method: 'DELETE', url: `/jobs/${job.id}` })
  const urls = [
    `/jobs/${job.id}?__proto__[polluted]=yes`, `/jobs/${job.id}?constructor[prototype][polluted]=yes`,
    `/jobs/${job.id}?offset=1&offset=2`, `/jobs/${job.id}?limit[]=5`, `/jobs/${job.id}?wait=1e999`, `/jobs/${job.id}?results=page&results=none`,
    `/jobs/${job.id}?offset=99999999999`, `/jobs/${job.id}?offset=4503599627370496&limit=1000`, `/jobs/${job.id}?${'a=1&'.repeat(2000)}`,
    '/jobs/%00', '/jobs/..%2F..%2Fetc%2Fpasswd', `/jobs/${'j'.repeat(65)}`, '/jobs/%F0%9F%98%80',
    `/jobs/${job.id}/results/-1/content`, `/jobs/${job.id}/results/1e309/content`, `/jobs/${job.id}/results/99999999999999999999/content`,
    `/jobs/${job.id}/results/abc/content`, `/jobs/${job.id}/events?after=__proto__`, `/jobs/${job.id}/events?after=${'1'.repeat(30)}-0`,
    '/healthz/', '/jobs/', '//jobs', '/JOBS'
  ]
  for (const url of urls) noFaults(t, await app.inject({ url, headers: { accept: 'application/json, text/event-stream' } }), url)
  // Broken percent-encoding, a path parameter past 100 characters: Fastify's router refuses these
  // itself, through its frameworkErrors.
  for (const url of ['/jobs/%E0%A4%A', '/jobs/%zz', '/%', `/jobs/${'j'.repeat(101)}`, `/jobs/${job.id}/results/${'1'.repeat(101)}/content`]) {
    const res = await app.inject(url)
    t.ok(res.statusCode >= 400 && res.statusCode < 500, `${url}: ${res.statusCode}`)
    t.same(faults(res), [], `${url}: a full problem with the security headers`)
  }
  t.equal(({} as Record<string, unknown>).polluted, undefined, 'Object.prototype was not polluted')
})

t.test('a huge offset does not hang the API', async (t) => {
  // A spawned API: if the request hangs its event loop, the test still ends, with a failure.
  const prefix = testPrefix(t, 'offset')
  const child = spawnTrawl(t, 'api', { ...testEnv(prefix), PORT: '0', LOG_LEVEL: 'info' })
  const base = String((await waitForLog(child, /trawl is up/)).address)
  const id = 'j_01JAAAAAAAAAAAAAAAAAAAAAAA'
  // 2^53 - 2: the page loop's index stops growing at 2^53 and never reaches offset + limit.
  const res = await fetch(`${base}/jobs/${id}?offset=9007199254740990&limit=5`, { signal: AbortSignal.timeout(3000) }).catch((err: unknown) => err)
  t.ok(res instanceof Response, 'the API answers within 3 s')
  // Past the documented maximum (100,000,000): refused before Redis is asked.
  if (res instanceof Response) {
    t.equal(res.status, 400, 'an offset past the maximum is refused')
    const body = await res.json() as { code?: string, errors?: Array<{ path: string }> }
    t.equal(body.code, 'VALIDATION_FAILED')
    t.same(body.errors?.map((e) => e.path), ['/querystring/offset'], 'the error points at offset')
  }
  // The largest offset allowed reads an empty page at once (the loop runs over `limit`).
  const max = await fetch(`${base}/jobs/${id}?offset=100000000&limit=1000`, { signal: AbortSignal.timeout(3000) }).catch((err: unknown) => err)
  t.ok(max instanceof Response && max.status === 404, 'the maximum offset answers at once (404: no such job)')
  const health = await fetch(`${base}/healthz`, { signal: AbortSignal.timeout(1000) }).catch((err: unknown) => err)
  t.ok(health instanceof Response && health.status === 200, 'and still answers /healthz')
})

t.test('security headers on every kind of answer', async (t) => {
  const gate = await startGateServer(100)
  t.teardown(gate.close)
  // Four submissions a minute: the fifth POST below is the 429.
  const keyed = await startTrawl(t, { env: { API_KEYS: `team-a:${KEY_A}`, RATE_LIMIT_PER_MINUTE: '4' } })
  const app = keyed.api.app
  const job = (await app.inject({ method: 'POST', url: '/jobs', headers: AS_A, payload: { urls: [gate.url('/fast/0')] } })).json<{ id: string }>()
  await app.inject({ url: `/jobs/${job.id}?wait=10&results=none`, headers: AS_A })
  const answers: Array<[string, LightMyRequestResponse]> = [
    ['200 /healthz', await app.inject('/healthz')],
    ['200 GET /jobs/:id', await app.inject({ url: `/jobs/${job.id}`, headers: AS_A })],
    ['200 events', await app.inject({ url: `/jobs/${job.id}/events`, headers: { ...AS_A, accept: 'text/event-stream' } })],
    ['200 content', await app.inject({ url: `/jobs/${job.id}/results/0/content`, headers: AS_A })],
    ['202 POST /jobs', await app.inject({ method: 'POST', url: '/jobs', headers: AS_A, payload: { urls: [gate.url('/fast/1')] } })],
    ['400 POST /jobs', await app.inject({ method: 'POST', url: '/jobs', headers: AS_A, payload: { urls: [] } })],
    ['415 POST /jobs', await app.inject({ method: 'POST', url: '/jobs', headers: { ...AS_A, 'content-type': 'application/x-www-form-urlencoded' }, payload: 'urls=x' })],
    ['429 POST /jobs', await app.inject({ method: 'POST', url: '/jobs', headers: AS_A, payload: { urls: [gate.url('/fast/2')] } })],
    ['404 job', await app.inject({ url: '/jobs/j_01JAAAAAAAAAAAAAAAAAAAAAAA', headers: AS_A })],
    ['404 route', await app.inject({ url: '/nope', headers: AS_A })],
    ['409 DELETE', await app.inject({ method: 'DELETE', url: `/jobs/${job.id}`, headers: AS_A })]
  ]
  t.same(answers.map(([name, res]) => `${name}: ${res.statusCode}`), answers.map(([name]) => `${name}: ${name.split(' ')[0]}`), 'each answer has the status it is named for')
  const unauthorized = await app.inject({ url: `/jobs/${job.id}` })
  const overloaded = await startTrawl(t, { worker: false, env: { OVERLOAD_MAX_RSS_MB: '1' } })
  // The memory is sampled once a second, with no event to wait for.
  const shed = await eventually(async () => {
    const res = await overloaded.api.app.inject('/readyz')
    return res.statusCode === 503 && res
  }, { what: '/readyz is shed with 503', intervalMs: 50 })
  answers.push(['503 overloaded', shed])

  const check = (name: string, res: LightMyRequestResponse) => {
    const h = res.headers
    t.equal(h['x-content-type-options'], 'nosniff', `${name}: X-Content-Type-Options`)
    t.match(h['x-frame-options'], /^(DENY|SAMEORIGIN)$/, `${name}: X-Frame-Options`)
    t.match(h['content-security-policy'], /default-src 'none'/, `${name}: a Content-Security-Policy that allows nothing`)
    t.match(h['content-security-policy'], /frame-ancestors 'none'|sandbox/, `${name}: no framing`)
    t.equal(h['referrer-policy'], 'no-referrer', `${name}: Referrer-Policy`)
    t.match(h['strict-transport-security'], /max-age=\d+/, `${name}: Strict-Transport-Security`)
    t.equal(h['cross-origin-resource-policy'], 'same-origin', `${name}: Cross-Origin-Resource-Policy`)
    t.equal(h['x-powered-by'], undefined, `${name}: no X-Powered-By`)
    t.notOk(LEAK.test(res.body), `${name}: no internal text`)
  }
  for (const [name, res] of answers) check(name, res)
  t.equal(unauthorized.statusCode, 401)
  check('401 without a key', unauthorized)
  const content = answers.find(([name]) => name === '200 content')?.[1]
  t.equal(content?.headers['content-security-policy'], "default-src 'none'; frame-ancestors 'none'; sandbox", 'a stored body is sandboxed and never framed')
})

t.test('fuzzing POST /jobs and GET /jobs/:id from openapi.yaml: no 5xx, every 4xx a full problem', async (t) => {
  t.comment(`spec: ${specPath()}`)
  const spec = loadSpec()
  const submission = inline(spec, { $ref: '#/components/schemas/JobSubmission' })
  const ajv = new Ajv2020({ strict: false, allErrors: false })
  const validBody = ajv.compile(submission)
  const paths = spec.paths as Record<string, Record<string, { parameters?: unknown[] }>>
  const params = (paths['/jobs/{id}']?.get?.parameters ?? []).map((p) => inline(spec, p))
    .filter((p) => p.in === 'query')
    .map((p) => ({ name: String(p.name), schema: p.schema as Schema, check: new Ajv2020({ strict: false, coerceTypes: true }).compile({ type: 'object', properties: { v: p.schema as Schema } }) }))
  t.same(params.map((p) => p.name).sort(), ['limit', 'offset', 'results', 'wait'], 'the document names the query parameters')

  const secret = 'fuzz-secret-0123456789abcdef'
  const { api } = await startTrawl(t, { worker: false, env: { CALLBACK_SECRET: secret, RATE_LIMIT_PER_MINUTE: '1000000', MAX_PENDING_URLS_PER_TENANT: '100000000' } })
  const app = api.app
  const seed = Number(process.env.TRAWL_FUZZ_SEED ?? 0x7a11)
  t.comment(`seed ${seed} (TRAWL_FUZZ_SEED to change it)`)
  const fuzz = new Fuzzer(seed)
  const failures: string[] = []
  const tally = new Map<number, number>()
  const record = (what: string, res: LightMyRequestResponse, refuse: boolean) => {
    tally.set(res.statusCode, (tally.get(res.statusCode) ?? 0) + 1)
    const found = faults(res, { refuse })
    if (res.statusCode === 202 && !/^\/jobs\/j_/.test(String(res.headers.location))) found.push('a 202 without Location')
    if (found.length > 0) failures.push(`${what} -> ${res.statusCode}: ${found.join('; ')} ${res.body.slice(0, 160)}`)
  }

  // Valid bodies first: the generator and the server must agree that they are valid.
  for (let i = 0; i < 40; i++) {
    const body = fuzz.valid(submission)
    const res = await post(app, JSON.stringify(body))
    t.ok(validBody(body), `valid body #${i} is valid per the document`)
    if (res.statusCode !== 202) failures.push(`valid body #${i} ${JSON.stringify(body).slice(0, 200)} -> ${res.statusCode} ${res.body.slice(0, 300)}`)
  }
  for (let i = 0; i < 300; i++) {
    const mutant = fuzz.mutate(submission, fuzz.valid(submission))
    const refuse = mutant.mustRefuse || ('value' in mutant && !validBody(mutant.value))
    record(`body #${i} (${mutant.note})`, await post(app, mutant.raw), refuse)
  }

  // Query strings of GET /jobs/:id, on a finished job (so `wait` never waits) and an unknown id.
  const job = (await post(app, JSON.stringify({ urls: ['http://127.0.0.1:9/a', 'http://127.0.0.1:9/b'] }))).json<{ id: string }>()
  await app.inject({ method: 'DELETE', url: `/jobs/${job.id}` })
  const breakers = ['-1', '0.5', '1e20', '9007199254740993', 'Infinity', 'NaN', '-0', ' 5', '0x10', 'abc', '', '%00', '%E2%80%AE', 'x'.repeat(5000), '1,2', 'true', '[]', 'none', 'page', 'NONE']
  let huge = 0
  for (let i = 0; i < 200; i++) {
    const query: Array<[string, string]> = []
    let refuse = false
    const broken = fuzz.int(0, params.length)
    params.forEach((p, k) => {
      if (k === broken) {
        const v = fuzz.pick(breakers)
        const value = (() => { try { return decodeURIComponent(v) } catch { return v } })()
        // An empty value reads as "not given" (0, the default), as most servers take it.
        if (value !== '' && !p.check({ v: value })) refuse = true
        query.push([p.name, v])
        if (fuzz.chance(0.15)) {
          query.push([p.name, v])
          refuse = true
        }
      } else if (fuzz.chance(0.6)) {
        const v = p.schema.type === 'number' || p.schema.type === 'integer'
          ? String(fuzz.chance(0.2) ? fuzz.pick([p.schema.minimum ?? 0, p.schema.maximum ?? 100]) : fuzz.valid(p.schema))
          : String(fuzz.valid(p.schema))
        query.push([p.name, p.name === 'wait' ? String(Math.min(Number(v), 1)) : v])
      }
    })
    // Offsets past the maximum used to hang the API near 2^53; now they are refused like any other.
    if (Number(query.find(([n]) => n === 'offset')?.[1] ?? 0) > 100_000_000) huge++
    const qs = query.map(([n, v]) => `${n}=${v}`).join('&')
    for (const id of [job.id, 'j_01JAAAAAAAAAAAAAAAAAAAAAAA']) record(`GET /jobs/${id === job.id ? 'finished' : 'unknown'}?${qs.slice(0, 120)}`, await app.inject(`/jobs/${id}?${qs}`), refuse)
  }
  t.comment(`${huge} query cases with an offset past the maximum, sent like the others`)

  // Paths: ids of every length and alphabet.
  for (let i = 0; i < 60; i++) {
    const n = fuzz.pick([1, 10, 28, 64, 65, 300])
    const id = Array.from({ length: n }, () => fuzz.pick([...'0123456789ABCDEFGHJKMNPQRSTVWXYZ_j-.~', '%2F', '%00', '%20', '%E2%82%AC', '\u00e9'])).join('')
    record(`GET /jobs/${id.slice(0, 80)}`, await app.inject({ url: `/jobs/${encodeURI(id).replaceAll('%25', '%')}` }), false)
    record(`GET content of ${id.slice(0, 40)}`, await app.inject({ url: `/jobs/${job.id}/results/${encodeURIComponent(id)}/content` }), false)
  }

  t.comment(`answers by status: ${[...tally.entries()].sort().map(([s, n]) => `${s} x${n}`).join(', ')}`)
  t.ok((tally.get(400) ?? 0) > 200, 'most mutants were refused with 400')
  t.same(failures, [], 'no 5xx, no accepted invalid body, every 4xx a full problem')
  t.equal(({} as Record<string, unknown>).polluted, undefined, 'Object.prototype was not polluted')
})
