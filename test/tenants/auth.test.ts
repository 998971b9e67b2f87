import { once } from 'node:events'
import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import type { LightMyRequestResponse } from 'fastify'
import { Redis } from 'ioredis'
import t, { type Test } from 'tap'
import { ConfigError, loadConfig } from '../../src/config.js'
import { startGateServer } from '../helpers/gate-server.js'
import { startReceiver } from '../helpers/receiver.js'
import { TEST_REDIS_URL, testPrefix } from '../helpers/redis.js'
import { captureLogs, dumpPrefix, injectedProblem, keysUnder } from '../helpers/security.js'
import { spawnTrawl, startTrawl, testEnv } from '../helpers/trawl.js'

// API keys: every route but the probes needs one; a job is visible only to the tenant that
// created it; the keys themselves never reach a log line, a Redis value or a callback.

const KEY_A = 'tenant-a-key-7d1f0c9e5b2a4c68'
const KEY_B = 'tenant-b-key-93e4a1f6c0d27b85'
const API_KEYS = `team-a:${KEY_A},team-b:${KEY_B}`
const AS_A = { authorization: `Bearer ${KEY_A}` }
const AS_B = { authorization: `Bearer ${KEY_B}` }
const UNKNOWN_ID = 'j_01JAAAAAAAAAAAAAAAAAAAAAAA'
const SECRET = 'callback-secret-0123456789abcdef'

// What a client might send instead of a valid `Authorization: Bearer <key>`.
const BAD_AUTH: Array<[string, Record<string, string>]> = [
  ['no Authorization', {}],
  ['Bearer without a key', { authorization: 'Bearer' }],
  ['Bearer and blanks', { authorization: 'Bearer    ' }],
  ['the Basic scheme', { authorization: `Basic ${Buffer.from(`team-a:${KEY_A}`).toString('base64')}` }],
  ['the key without a scheme', { authorization: KEY_A }],
  ['two tokens', { authorization: `Bearer ${KEY_A} ${KEY_A}` }],
  ['a wrong key', { authorization: 'Bearer not-the-key-of-anyone-0000' }],
  ['a prefix of a key', { authorization: `Bearer ${KEY_A.slice(0, -1)}` }],
  ['a key and one more character', { authorization: `Bearer ${KEY_A}0` }],
  ['tenant:key instead of the key', { authorization: `Bearer team-a:${KEY_A}` }]
]

interface Call {
  name: string
  method: 'GET' | 'POST' | 'DELETE' | 'PUT'
  url: string
  payload?: unknown
  headers?: Record<string, string>
}

/** Every route a client may call, for job `id`, and a few no route serves. */
function routes (id: string): Call[] {
  return [
    { name: 'POST /jobs', method: 'POST', url: '/jobs', payload: { urls: ['http://127.0.0.1:9/a'] } },
    { name: 'GET /jobs/:id', method: 'GET', url: `/jobs/${id}` },
    { name: 'GET /jobs/:id?wait=30', method: 'GET', url: `/jobs/${id}?wait=30` },
    { name: 'DELETE /jobs/:id', method: 'DELETE', url: `/jobs/${id}` },
    { name: 'GET content', method: 'GET', url: `/jobs/${id}/results/0/content` },
    { name: 'GET events', method: 'GET', url: `/jobs/${id}/events`, headers: { accept: 'text/event-stream' } },
    { name: 'an unknown route', method: 'GET', url: '/nope' },
    { name: 'an unknown method', method: 'PUT', url: '/jobs', payload: {} }
  ]
}

function call (c: Call, auth: Record<string, string>) {
  return { method: c.method, url: c.url, headers: { ...c.headers, ...auth }, ...(c.payload === undefined ? {} : { payload: c.payload as Record<string, unknown> }) }
}

function expect401 (t: Test, res: LightMyRequestResponse, what: string) {
  const body = injectedProblem(t, res, { status: 401, code: 'UNAUTHORIZED' }, what)
  t.match(res.headers['www-authenticate'], /^Bearer\b/, `${what}: WWW-Authenticate: Bearer`)
  t.notMatch(JSON.stringify(body), KEY_A, `${what}: the problem does not echo a key`)
}

t.test('without a valid key every route but the probes answers 401, before doing anything', async (t) => {
  // MAX_URLS_PER_JOB 10: the body limit is 1 MiB, so a larger body shows which check comes first.
  const { api, prefix } = await startTrawl(t, { worker: false, env: { API_KEYS, MAX_URLS_PER_JOB: '10' } })
  const redis = new Redis(TEST_REDIS_URL)
  t.teardown(() => redis.disconnect())

  for (const [how, auth] of BAD_AUTH) {
    for (const c of routes(UNKNOWN_ID)) expect401(t, await api.app.inject(call(c, auth)), `${c.name} with ${how}`)
  }
  const huge = JSON.stringify({ urls: [`http://a.test/${'x'.repeat(1_500_000)}`] })
  expect401(t, await api.app.inject({ method: 'POST', url: '/jobs', headers: { 'content-type': 'application/json' }, payload: huge }),
    'an oversize body without a key (the key is checked before the body is read)')

  const written = await keysUnder(redis, `${prefix}:*`)
  t.same(written.filter((k) => k.includes(':job:')), [], 'no job record was written')
  t.same(written.filter((k) => /:fetch:j_/.test(k)), [], 'no lane was queued')
  t.same(written.filter((k) => /:ratelimit:|:tenant:/.test(k)), [], 'not even a rate-limit or tenant counter moved')
  injectedProblem(t, await api.app.inject({ method: 'POST', url: '/jobs', headers: { ...AS_A, 'content-type': 'application/json' }, payload: huge }),
    { status: 413, code: 'PAYLOAD_TOO_LARGE' }, 'the same body with a key')

  // A job that exists: refused the same way, and left as it was.
  const created = await api.app.inject({ method: 'POST', url: '/jobs', headers: AS_A, payload: { urls: ['http://127.0.0.1:9/a', 'http://127.0.0.1:9/b'], options: { concurrency: 2 } } })
  t.equal(created.statusCode, 202)
  const job = created.json<{ id: string }>()
  const before = await keysUnder(redis, `${prefix}:*`)
  for (const [how, auth] of BAD_AUTH) {
    for (const c of routes(job.id)) expect401(t, await api.app.inject(call(c, auth)), `${c.name} of a real job with ${how}`)
  }
  const after = (await api.app.inject({ url: `/jobs/${job.id}`, headers: AS_A })).json()
  t.equal(after.state, 'queued', 'the job was not cancelled')
  t.same(after.counts, { pending: 2, running: 0, succeeded: 0, failed: 0, cancelled: 0 })
  t.same((await keysUnder(redis, `${prefix}:*`)).sort(), before.sort(), 'no key was added or removed')
  t.equal((await keysUnder(redis, `${prefix}:fetch:${job.id}-*`)).length, 2, 'its two lanes, and no more')

  // The scheme is case-insensitive (RFC 9110) and blanks around the token are tolerated.
  for (const authorization of [`bearer ${KEY_A}`, `BEARER ${KEY_A}`, `Bearer   ${KEY_A}  `]) {
    t.equal((await api.app.inject({ url: `/jobs/${job.id}`, headers: { authorization } })).statusCode, 200, `accepted: ${JSON.stringify(authorization.replace(KEY_A, 'KEY'))}`)
  }
})

t.test('the probes answer without a key', async (t) => {
  const { api } = await startTrawl(t, { worker: false, env: { API_KEYS } })
  for (const url of ['/healthz', '/readyz']) {
    const res = await api.app.inject(url)
    t.equal(res.statusCode, 200, `${url} without a key`)
    t.same(res.json(), { status: 'ok' })
    t.equal((await api.app.inject({ url, headers: { authorization: 'Bearer wrong-key-0000000000000' } })).statusCode, 200, `${url} with a wrong key`)
  }
})

t.test('another tenant\'s job reads as one that does not exist, on every route, and is left alone', async (t) => {
  const gate = await startGateServer(700)
  t.teardown(gate.close)
  const { api } = await startTrawl(t, { env: { API_KEYS } })
  const app = api.app

  const finished = (await app.inject({ method: 'POST', url: '/jobs', headers: AS_A, payload: { urls: [gate.url('/fast/0'), gate.url('/fast/1')] } })).json<{ id: string }>()
  t.equal((await app.inject({ url: `/jobs/${finished.id}?wait=20&results=none`, headers: AS_A })).json().state, 'completed')
  const held = (await app.inject({ method: 'POST', url: '/jobs', headers: AS_A, payload: { urls: [gate.url('/hold/0'), gate.url('/hold/1'), gate.url('/hold/2')], options: { concurrency: 1 } } })).json<{ id: string }>()
  await gate.untilWaiting(1)
  const heldBefore = (await app.inject({ url: `/jobs/${held.id}`, headers: AS_A })).json()
  t.equal(heldBefore.state, 'running')

  // The same request for an id nobody has: what B gets must not differ from it (but for the id).
  const shape = (res: LightMyRequestResponse, id: string) => ({
    status: res.statusCode,
    headers: Object.keys(res.headers).filter((h) => h !== 'date').sort(),
    contentLength: res.headers['content-length'],
    body: res.body.replaceAll(id, '<id>')
  })
  for (const id of [finished.id, held.id]) {
    for (const c of routes(id).filter((r) => r.url.startsWith(`/jobs/${id}`))) {
      const started = Date.now()
      const res = await app.inject(call(c, AS_B))
      const unknown = await app.inject(call({ ...c, url: c.url.replace(id, UNKNOWN_ID) }, AS_B))
      const what = `${c.name} by tenant B of A's ${id === held.id ? 'running' : 'finished'} job`
      injectedProblem(t, res, { status: 404, code: 'JOB_NOT_FOUND' }, what)
      t.same(shape(res, id), shape(unknown, UNKNOWN_ID), `${what}: the same answer as for an unknown id`)
      t.ok(Date.now() - started < 1000, `${what}: answered at once`)
    }
  }

  const heldAfter = (await app.inject({ url: `/jobs/${held.id}`, headers: AS_A })).json()
  t.equal(heldAfter.state, 'running', 'B\'s DELETE did not cancel A\'s job')
  t.same(heldAfter.counts, heldBefore.counts)
  t.equal(gate.waiting, 1, 'its fetch in flight was not aborted')
  const content = await app.inject({ url: `/jobs/${finished.id}/results/0/content`, headers: AS_A })
  t.equal(content.statusCode, 200, 'A still reads its content')
  t.equal(content.body.length, 700)
  t.equal((await app.inject({ url: `/jobs/${finished.id}`, headers: AS_A })).json().state, 'completed')

  gate.open()
  t.equal((await app.inject({ url: `/jobs/${held.id}?wait=20&results=none`, headers: AS_A })).json().state, 'completed')
})

t.test('API_KEYS may name a file of tenant:key lines', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'trawl-keys-'))
  t.teardown(() => rm(dir, { recursive: true, force: true }))
  const file = join(dir, 'keys')
  await writeFile(file, `# tenants of this deployment\nteam-a:${KEY_A}\n\n  team-b:${KEY_B}  \n`)
  const config = loadConfig({ API_KEYS: file })
  t.same(config.API_KEYS.map((k) => k.tenant), ['team-a', 'team-b'])

  const { api } = await startTrawl(t, { worker: false, env: { API_KEYS: file } })
  const created = await api.app.inject({ method: 'POST', url: '/jobs', headers: AS_B, payload: { urls: ['http://127.0.0.1:9/a'] } })
  t.equal(created.statusCode, 202, 'a key from the file is accepted')
  expect401(t, await api.app.inject({ url: `/jobs/${created.json<{ id: string }>().id}`, headers: { authorization: 'Bearer team-b' } }), 'a tenant name is not a key')
  injectedProblem(t, await api.app.inject({ url: `/jobs/${created.json<{ id: string }>().id}`, headers: AS_A }), { status: 404, code: 'JOB_NOT_FOUND' }, 'the other tenant of the file')
})

t.test('a bad API_KEYS stops the boot with a message that never shows a key', async (t) => {
  const cases: Array<[string, string, string]> = [
    ['a short key', 'team-a:S3CR3T-short', 'S3CR3T-short'],
    ['a key with a space', 'team-a:S3CR3T with spaces 0123456789', 'S3CR3T with spaces'],
    ['a bad tenant name', 'team a!:S3CR3T-0123456789abcdef', 'S3CR3T-0123456789abcdef'],
    ['no tenant', ':S3CR3T-0123456789abcdef', 'S3CR3T-0123456789abcdef'],
    ['one bad entry among good ones', `team-a:${KEY_A},S3CR3T-0123456789abcdef-no-tenant`, 'S3CR3T-0123456789abcdef'],
    ['a bare key (neither pairs nor a file)', 'S3CR3T0123456789abcdef', 'S3CR3T0123456789abcdef'],
    ['a file that does not exist', '/nonexistent/S3CR3T-keys', 'S3CR3T']
  ]
  for (const [name, value, secret] of cases) {
    let error: unknown
    try {
      loadConfig({ API_KEYS: value })
    } catch (err) {
      error = err
    }
    t.type(error, ConfigError, `${name}: refused`)
    const message = error instanceof Error ? error.message : ''
    t.match(message, /API_KEYS/, `${name}: the message names the variable`)
    t.notOk(message.includes(secret), `${name}: the message does not contain the key`)
    t.notOk(message.includes(KEY_A), `${name}: nor any other key`)
  }

  // One key for two tenants: requests with it would act for whichever tenant is listed first.
  let shared: unknown
  try {
    loadConfig({ API_KEYS: `team-a:${KEY_A},team-b:${KEY_A}` })
  } catch (err) {
    shared = err
  }
  t.type(shared, ConfigError, 'the same key for two tenants is refused')
  const sharedMessage = shared instanceof Error ? shared.message : ''
  t.match(sharedMessage, /API_KEYS/, 'the message names the variable')
  t.match(sharedMessage, /entry 2 \(team-b\)/, 'and the entry and tenant that repeat the key')
  t.notOk(sharedMessage.includes(KEY_A), 'but not the key')

  // The same through the real entry point: what the terminal and a log collector would see.
  const child = spawnTrawl(t, 'api', { ...testEnv(testPrefix(t, 'badkeys')), PORT: '0', API_KEYS: `team-a:${KEY_A},team-b:S3CR3T-short` })
  let output = ''
  child.stdout?.on('data', (d: Buffer) => { output += d.toString() })
  child.stderr?.on('data', (d: Buffer) => { output += d.toString() })
  const [code] = await once(child, 'exit')
  t.equal(code, 2, 'trawl api exits with status 2')
  t.match(output, /API_KEYS/)
  t.notOk(output.includes('S3CR3T-short'), 'the bad key is not printed')
  t.notOk(output.includes(KEY_A), 'the good key is not printed')
})

t.test('keys never reach the logs, Redis or a callback', async (t) => {
  const gate = await startGateServer(300)
  t.teardown(gate.close)
  const receiver = await startReceiver(SECRET, () => 204)
  t.teardown(receiver.close)
  const logs = captureLogs('trace')
  const { api, prefix } = await startTrawl(t, { logger: logs.logger, env: { API_KEYS, CALLBACK_SECRET: SECRET, LOG_LEVEL: 'trace', MAX_URLS_PER_JOB: '10' } })
  const app = api.app
  const redis = new Redis(TEST_REDIS_URL)
  t.teardown(() => redis.disconnect())
  const nearMisses = [KEY_A.slice(0, -1), `${KEY_B}x`, KEY_A.toUpperCase()]

  const payload = { urls: [gate.url('/fast/0'), gate.url('/fast/1')], callbackUrl: receiver.url() }
  const submitted = await app.inject({ method: 'POST', url: '/jobs', headers: { ...AS_A, 'idempotency-key': 'leak-check-1' }, payload })
  t.equal(submitted.statusCode, 202)
  const { id } = submitted.json<{ id: string }>()
  t.equal((await app.inject({ method: 'POST', url: '/jobs', headers: { ...AS_A, 'idempotency-key': 'leak-check-1' }, payload })).statusCode, 200)
  t.equal((await app.inject({ url: `/jobs/${id}?wait=20`, headers: AS_A })).json().state, 'completed')
  t.equal((await app.inject({ url: `/jobs/${id}/results/1/content`, headers: AS_A })).statusCode, 200)
  t.equal((await app.inject({ url: `/jobs/${id}/events`, headers: { ...AS_A, accept: 'text/event-stream' } })).statusCode, 200)
  t.equal((await app.inject({ method: 'DELETE', url: `/jobs/${id}`, headers: AS_A })).statusCode, 409)
  t.equal((await app.inject({ url: `/jobs/${id}`, headers: AS_B })).statusCode, 404)
  t.equal((await app.inject({ method: 'POST', url: '/jobs', headers: AS_B, payload: { urls: ['nope'] } })).statusCode, 400)
  t.equal((await app.inject({ method: 'POST', url: '/jobs', headers: { ...AS_B, 'content-type': 'application/json' }, payload: '{"urls": [' })).statusCode, 400)
  t.equal((await app.inject({ method: 'POST', url: '/jobs', headers: { ...AS_B, 'content-type': 'application/json' }, payload: JSON.stringify({ urls: [`http://a.test/${'x'.repeat(1_100_000)}`] }) })).statusCode, 413)
  for (const key of nearMisses) t.equal((await app.inject({ url: `/jobs/${id}`, headers: { authorization: `Bearer ${key}` } })).statusCode, 401)
  await receiver.untilReceived(1)
  t.ok(receiver.received[0]?.verified, 'the callback arrived, signed')

  const secrets = [KEY_A, KEY_B, ...nearMisses]
  t.ok(logs.lines.length > 20, `the service logged (${logs.lines.length} lines at trace)`)
  t.ok(logs.lines.some((l) => l.includes('job submitted')), 'the submission was logged')
  for (const [i, secret] of secrets.entries()) {
    t.same(logs.lines.filter((l) => l.includes(secret)), [], `key #${i + 1} is in no log line`)
  }

  const dump = await dumpPrefix(redis, prefix)
  t.ok(dump.keys.some((k) => k.includes(id)), 'the dump holds the job')
  for (const [i, secret] of secrets.entries()) t.notOk(dump.text.includes(secret), `key #${i + 1} is in no Redis key or value`)

  const callbacks = JSON.stringify(receiver.received.map((r) => ({ path: r.path, headers: r.headers, body: r.body })))
  for (const [i, secret] of secrets.entries()) t.notOk(callbacks.includes(secret), `key #${i + 1} is in no callback`)
})

t.test('without API_KEYS the service runs open and warns once at start-up', async (t) => {
  const logs = captureLogs('info')
  const { api } = await startTrawl(t, { worker: false, logger: logs.logger })
  const warnings = () => logs.entries().filter((e) => /API_KEYS/.test(String(e.msg)))
  t.equal(warnings().length, 1, 'one line about API_KEYS')
  t.equal(warnings()[0]?.level, 40, 'at level warn')
  t.equal((await api.app.inject({ method: 'POST', url: '/jobs', payload: { urls: ['http://127.0.0.1:9/a'] } })).statusCode, 202, 'no key needed')
  t.equal((await api.app.inject({ method: 'POST', url: '/jobs', headers: { authorization: 'Bearer whatever-0000000000000' }, payload: { urls: ['http://127.0.0.1:9/a'] } })).statusCode, 202, 'a key is ignored')
  t.equal(warnings().length, 1, 'and only once, however many requests follow')

  const keyed = captureLogs('info')
  await startTrawl(t, { worker: false, logger: keyed.logger, env: { API_KEYS } })
  t.same(keyed.entries().filter((e) => /API_KEYS/.test(String(e.msg))), [], 'with keys, no such warning')
})
