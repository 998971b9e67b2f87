import { Queue } from 'bullmq'
import Fastify from 'fastify'
import { Redis } from 'ioredis'
import t, { type Test } from 'tap'
import { adminRoutes } from '../../src/admin/index.js'
import { loadConfig } from '../../src/config.js'
import { CALLBACK_QUEUE, FETCH_QUEUE } from '../../src/jobs/keys.js'
import { errorHandler } from '../../src/http/error-handler.js'
import { securityHeaders } from '../../src/http/protection.js'
import { auth } from '../../src/tenants/auth.js'
import { TEST_REDIS_URL, testPrefix } from '../helpers/redis.js'
import { startTrawl, testEnv } from '../helpers/trawl.js'
import { launchBrowser } from './browser.js'

// /admin and /admin/queues: off without admin keys; with them, operators only.
const TENANT_KEY = 'tenant-key-0123456789abcdef'
const ADMIN_KEY = 'admin-key-0123456789abcdef'

t.test('without ADMIN_API_KEYS the admin routes are off', async (t) => {
  const { api } = await startTrawl(t, { env: { API_KEYS: `team:${TENANT_KEY}` }, worker: false })
  for (const url of ['/admin', '/admin/queues', '/admin/queues/api/queues']) {
    const res = await api.app.inject({ url, headers: { authorization: `Bearer ${TENANT_KEY}` } })
    t.equal(res.statusCode, 404, `${url} is not there`)
  }
})

async function adminApp (t: Test) {
  const prefix = testPrefix(t)
  const config = loadConfig(testEnv(prefix, { API_KEYS: `team:${TENANT_KEY}` }))
  const redis = new Redis(TEST_REDIS_URL, { maxRetriesPerRequest: null })
  const queues = [new Queue(FETCH_QUEUE, { connection: redis, prefix }), new Queue(CALLBACK_QUEUE, { connection: redis, prefix })]
  await queues[0]?.add('lane', { jobId: 'j_x', lane: 0 }, { delay: 60_000 })
  const app = Fastify()
  await app.register(errorHandler)
  await app.register(securityHeaders, { config })
  await app.register(auth, { keys: config.API_KEYS })
  await app.register(adminRoutes, { keys: [ADMIN_KEY], queues })
  t.teardown(async () => {
    await app.close()
    for (const q of queues) await q.close()
    redis.disconnect()
  })
  return app
}

t.test('with ADMIN_API_KEYS: refused without the key, served with it', async (t) => {
  const app = await adminApp(t)
  const board = '/admin/queues/api/queues'
  const bare = await app.inject({ url: board })
  t.equal(bare.statusCode, 401, 'no key: 401')
  t.equal(bare.json().code, 'UNAUTHORIZED')
  const page = await app.inject({ url: '/admin/queues', headers: { accept: 'text/html' } })
  t.equal(page.statusCode, 303, 'a person without the cookie is sent to the login form')
  t.equal(page.headers.location, '/admin')
  t.equal((await app.inject({ url: board, headers: { authorization: `Bearer ${TENANT_KEY}` } })).statusCode, 401, "a tenant's key is not an admin key")

  const withBearer = await app.inject({ url: board, headers: { authorization: `Bearer ${ADMIN_KEY}` } })
  t.equal(withBearer.statusCode, 200, 'the admin key as a bearer')
  const names = (withBearer.json() as { queues: Array<{ name: string }> }).queues.map((q) => q.name).sort()
  t.same(names, [CALLBACK_QUEUE, FETCH_QUEUE])

  const wrong = await app.inject({ method: 'POST', url: '/admin', payload: 'key=nope', headers: { 'content-type': 'application/x-www-form-urlencoded' } })
  t.equal(wrong.statusCode, 401, 'a wrong key at the form')
  t.notOk(wrong.headers['set-cookie'])
  const login = await app.inject({ method: 'POST', url: '/admin', payload: `key=${ADMIN_KEY}`, headers: { 'content-type': 'application/x-www-form-urlencoded' } })
  t.equal(login.statusCode, 303)
  const cookie = String(login.headers['set-cookie'])
  t.match(cookie, /^trawl_admin=[\w-]{43}; Path=\/admin; HttpOnly; SameSite=Strict$/, 'HttpOnly, SameSite=Strict, not Secure over plain http')
  t.notMatch(cookie, ADMIN_KEY, 'the cookie is not the key itself')
  const session = cookie.split(';')[0] as string
  const served = await app.inject({ url: '/admin/queues', headers: { cookie: session } })
  t.equal(served.statusCode, 200, 'the board, with the cookie')
  t.match(served.headers['content-type'], /text\/html/)
  t.notMatch(served.headers['content-security-policy'], /unsafe-inline|unsafe-eval/)
  t.equal((await app.inject({ url: board, headers: { cookie: 'trawl_admin=forged' } })).statusCode, 401, 'a forged cookie')

  const pause = await app.inject({ method: 'PUT', url: `/admin/queues/api/queues/${FETCH_QUEUE}/pause`, headers: { cookie: session } })
  t.not(pause.statusCode, 200, `read-only board: pausing is refused (${pause.statusCode})`)
})

t.test('an operator logs in with the form and sees the queues', async (t) => {
  const app = await adminApp(t)
  const base = await app.listen({ port: 0, host: '127.0.0.1' })
  const { page, problems } = await launchBrowser(t)
  await page.goto(`${base}/admin/queues`)
  await page.locator('input[name=key]').fill(ADMIN_KEY)
  await page.locator('button[type=submit]').click()
  await page.waitForURL(`${base}/admin/queues`)
  await page.getByText(FETCH_QUEUE, { exact: true }).first().waitFor()
  await page.getByText(CALLBACK_QUEUE, { exact: true }).first().waitFor()
  t.pass('Bull Board shows both queues')
  t.same(problems.filter((p) => /script-src|Refused to execute|pageerror/i.test(p)), [], 'no script refused')
})
