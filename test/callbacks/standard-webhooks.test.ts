import { once } from 'node:events'
import { createServer, type IncomingHttpHeaders } from 'node:http'
import type { AddressInfo } from 'node:net'
import { randomBytes } from 'node:crypto'
import { Webhook } from 'standardwebhooks'
import { Webhook as SvixWebhook } from 'svix'
import t, { type Test } from 'tap'
import { deliverCallback } from '../../src/callbacks/deliver.js'
import { ConfigError, loadConfig } from '../../src/config.js'
import { isUsableWebhookSecret, signWebhook, webhookKey } from '../../src/callbacks/sign.js'
import { createDispatcher } from '../../src/fetcher/agent.js'
import { createAddressGuard } from '../../src/fetcher/guard.js'

interface Attempt { headers: IncomingHttpHeaders, body: string }

// A receiver on loopback that records each attempt and answers 500 first, then 204.
async function startReceiver (t: Test) {
  const attempts: Attempt[] = []
  const server = createServer((req, res) => {
    const chunks: Buffer[] = []
    req.on('data', (c: Buffer) => chunks.push(c))
    req.on('end', () => {
      attempts.push({ headers: req.headers, body: Buffer.concat(chunks).toString() })
      res.writeHead(attempts.length === 1 ? 500 : 204).end()
    })
  })
  server.listen(0, '127.0.0.1')
  await once(server, 'listening')
  t.teardown(() => {
    server.closeAllConnections()
    server.close()
  })
  return { attempts, url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/hook` }
}

function dispatcher (t: Test) {
  const agent = createDispatcher({ guard: createAddressGuard(['127.0.0.0/8']) })
  t.teardown(() => agent.close())
  return agent
}

// The headers as a receiver's framework would hand them to the library: plain strings.
function plain (headers: IncomingHttpHeaders): Record<string, string> {
  return Object.fromEntries(Object.entries(headers).map(([k, v]) => [k, String(v)]))
}

const body = JSON.stringify({ id: '01JTESTJOB', state: 'completed', counts: { succeeded: 2 } })

for (const [name, secret] of [
  ['a whsec_ secret', `whsec_${randomBytes(32).toString('base64')}`],
  ['an unprefixed base64 secret (openssl rand -hex 32)', randomBytes(32).toString('hex')]
] as const) {
  t.test(`${name}: both libraries verify a real delivery, twice, under one webhook-id`, async (t) => {
    const receiver = await startReceiver(t)
    const agent = dispatcher(t)
    const first = await deliverCallback(agent, receiver.url, { secret, webhookId: '01JTESTJOB', body })
    const second = await deliverCallback(agent, receiver.url, { secret, webhookId: '01JTESTJOB', body })
    t.match(first, { ok: false, status: 500, retryable: true })
    t.match(second, { ok: true, status: 204 })
    t.equal(receiver.attempts.length, 2)
    for (const a of receiver.attempts) {
      t.same(new Webhook(secret).verify(a.body, plain(a.headers)), JSON.parse(body), 'standardwebhooks verifies')
      t.same(new SvixWebhook(secret).verify(a.body, plain(a.headers)), JSON.parse(body), 'svix verifies')
      const tampered = a.body.replace('completed', 'failed')
      t.throws(() => new Webhook(secret).verify(tampered, plain(a.headers)), /No matching signature/)
      t.throws(() => new SvixWebhook(secret).verify(tampered, plain(a.headers)), /No matching signature/)
    }
    t.equal(receiver.attempts[0]?.headers['webhook-id'], '01JTESTJOB')
    t.equal(receiver.attempts[1]?.headers['webhook-id'], receiver.attempts[0]?.headers['webhook-id'], 'webhook-id is the same on the retry')
  })
}

t.test('a secret the libraries refuse is used as raw bytes, verified with format raw', async (t) => {
  const secret = 'test-secret-0123456789abcdef'
  t.throws(() => new Webhook(secret), 'the libraries refuse it as base64')
  const receiver = await startReceiver(t)
  await deliverCallback(dispatcher(t), receiver.url, { secret, webhookId: 'raw-1', body })
  const a = receiver.attempts[0]
  if (a === undefined) throw new Error('no attempt reached the receiver')
  t.same(new Webhook(secret, { format: 'raw' }).verify(a.body, plain(a.headers)), JSON.parse(body))
  t.equal(isUsableWebhookSecret(secret), true)
})

t.test('a whsec_ secret whose rest is not base64 is refused', async (t) => {
  t.throws(() => webhookKey('whsec_not-base64-at-all!'), /not base64/)
  t.equal(isUsableWebhookSecret('whsec_not-base64-at-all!'), false)
  t.equal(isUsableWebhookSecret('whsec_'), false)
})

t.test('such a secret stops the boot, with a message that names the variable and not the secret', async (t) => {
  const bad = 'whsec_not-base64-at-all!'
  const err = t.throws(() => loadConfig({ CALLBACK_SECRET: bad }))
  t.ok(err instanceof ConfigError)
  t.match((err as Error).message, /CALLBACK_SECRET: starts with whsec_ but the rest is not base64/)
  t.notMatch((err as Error).message, /not-base64-at-all/, 'the secret is not in the message')
  const good = `whsec_${randomBytes(24).toString('base64')}`
  t.equal(loadConfig({ CALLBACK_SECRET: good }).CALLBACK_SECRET, good, 'a whsec_ secret with a base64 key boots')
})

t.test('the key is the one the reference library derives, for any base64-looking secret', async (t) => {
  const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/-_='
  const when = new Date(1_700_000_000_000)
  let compared = 0
  for (let n = 0; n < 5000; n++) {
    const bytes = randomBytes(16 + (n % 40))
    const text = Array.from(bytes, (b) => alphabet[b % alphabet.length]).join('')
    let reference: Webhook | null
    try {
      reference = new Webhook(text)
    } catch {
      reference = null
    }
    if (reference === null) {
      if (!webhookKey(text).equals(Buffer.from(text))) t.fail(`${text}: refused by the library, so it should be raw`)
      continue
    }
    compared++
    if (reference.sign('id', when, body) !== signWebhook(text, 'id', 1_700_000_000, body)) t.fail(`${text}: not the library's key`)
  }
  t.ok(compared > 100, `compared ${compared} decodable secrets`)
})
