import t from 'tap'
import { createDispatcher } from '../../src/fetcher/agent.js'
import { classify } from '../../src/fetcher/classify.js'
import { fetchPage } from '../../src/fetcher/fetch-page.js'
import { createAddressGuard } from '../../src/fetcher/guard.js'
import { freePort as closedPort } from '../../src/redis/free-port.js'
import { fetchTarget, never, opts, recordSleeps } from './fixtures.js'

const { target, agent } = await fetchTarget(t)
const err = (code: string, message = code): Error => Object.assign(new Error(message), { code })

t.test('classify: one error per code family', async (t) => {
  t.match(classify(err('BLOCKED_ADDRESS')), { code: 'BLOCKED_ADDRESS', retryable: false })
  for (const c of ['ENOTFOUND', 'EAI_NONAME', 'EAI_FAIL', 'EAI_NODATA', 'ENODATA']) t.match(classify(err(c)), { code: 'DNS_FAILED', retryable: false }, c)
  t.match(classify(err('EAI_AGAIN')), { code: 'DNS_FAILED', retryable: true })
  for (const c of ['DEPTH_ZERO_SELF_SIGNED_CERT', 'ERR_TLS_CERT_ALTNAME_INVALID', 'ERR_SSL_WRONG_VERSION_NUMBER', 'ERR_OSSL_EVP_BAD_DECRYPT', 'EPROTO', 'HOSTNAME_MISMATCH']) {
    t.match(classify(err(c)), { code: 'TLS_FAILED', retryable: false }, c)
  }
  for (const c of ['ECONNREFUSED', 'UND_ERR_CONNECT_TIMEOUT', 'EHOSTUNREACH', 'ENETUNREACH', 'ETIMEDOUT', 'EADDRNOTAVAIL']) {
    t.match(classify(err(c)), { code: 'CONNECT_FAILED', retryable: true }, c)
  }
  t.match(classify(err('UND_ERR_HEADERS_TIMEOUT')), { code: 'TIMEOUT', retryable: true })
  t.match(classify(err('UND_ERR_BODY_TIMEOUT')), { code: 'TIMEOUT', retryable: true })
  t.match(classify(err('UND_ERR_HEADERS_OVERFLOW')), { code: 'NETWORK', retryable: false }, 'a too-large header block will not shrink on retry')
  for (const c of ['UND_ERR_INVALID_ARG', 'ERR_INVALID_ARG_TYPE', 'ERR_INVALID_CHAR', 'UND_ERR_NOT_SUPPORTED']) {
    t.match(classify(err(c)), { code: 'INTERNAL', retryable: false }, c)
  }
  for (const c of ['UND_ERR_SOCKET', 'ECONNRESET', 'EPIPE', 'HPE_INVALID_CONSTANT', 'UND_ERR_RES_CONTENT_LENGTH_MISMATCH']) {
    t.match(classify(err(c)), { code: 'NETWORK', retryable: true }, `${c}: a transport fault`)
  }
})

t.test('classify: messages', async (t) => {
  t.match(classify(err('UND_ERR_SOCKET', 'other side closed')), { message: 'other side closed' })
  t.match(classify(new Error('fetch failed', { cause: err('ECONNRESET', 'read ECONNRESET') })), { message: 'read ECONNRESET' },
    'the message of the error that decided, not of its wrapper')
  t.match(classify(Object.assign(new Error(''), { code: 'EPIPE' })), { code: 'NETWORK', message: 'Error' }, 'an empty message falls back to the error as text')
  t.same(classify(new TypeError('x is not a function')), { code: 'INTERNAL', message: 'unexpected error: x is not a function', retryable: false })
  t.same(classify('a string'), { code: 'INTERNAL', message: 'unexpected error: a string', retryable: false })
  t.match(classify(undefined), { code: 'INTERNAL' })
  t.match(classify({ code: 42 }), { code: 'INTERNAL' }, 'a code that is not a string is no code')
})

t.test('classify: cause and AggregateError chains', async (t) => {
  t.match(classify(new Error('wrapped', { cause: err('ECONNRESET') })), { code: 'NETWORK', retryable: true })
  t.match(classify(new Error('wrapped', { cause: err('BLOCKED_ADDRESS') })), { code: 'BLOCKED_ADDRESS', retryable: false })
  t.match(classify(new AggregateError([err('ECONNREFUSED'), err('ECONNREFUSED')], 'all failed')), { code: 'CONNECT_FAILED', retryable: true })
  t.match(classify(new Error('a', { cause: new AggregateError([new Error('b'), new Error('c', { cause: err('EAI_AGAIN') })]) })),
    { code: 'DNS_FAILED', retryable: true }, 'found at depth 3 through both kinds of link')

  // Rules go by priority, not by depth: a blocked address anywhere in the chain wins.
  const both = new AggregateError([err('ECONNREFUSED'), new Error('guard', { cause: err('BLOCKED_ADDRESS', 'blocked 10.0.0.1') })])
  t.same(classify(both), { code: 'BLOCKED_ADDRESS', message: 'blocked 10.0.0.1', retryable: false })
  t.match(classify(new AggregateError([err('ECONNRESET'), err('ENOTFOUND')])), { code: 'DNS_FAILED', retryable: false }, 'DNS before a transport fault')
  t.match(classify(new AggregateError([err('ECONNREFUSED'), err('CERT_HAS_EXPIRED')])), { code: 'TLS_FAILED' }, 'TLS before connect')

  const a = err('ECONNRESET', 'a')
  const b = new Error('b', { cause: a })
  ;(a as { cause?: unknown }).cause = b
  t.match(classify(b), { code: 'NETWORK', message: 'a' }, 'a cycle in the chain ends')

  let deep: Error = err('BLOCKED_ADDRESS')
  for (let i = 0; i < 20; i++) deep = new Error(`level ${i}`, { cause: deep })
  t.match(classify(deep), { code: 'INTERNAL', message: 'unexpected error: level 19' }, 'the chain is read 16 errors deep, no further')
})

t.test('NETWORK: a connection reset', async (t) => {
  const r = await fetchPage(agent, target.url('/reset'), opts, never)
  t.match(r, { ok: false, status: null, attempts: 1, error: { code: 'NETWORK' } })

  const recovered = await fetchPage(agent, target.url('/reset?key=once&fails=1'), { ...opts, retries: 1 }, never, recordSleeps())
  t.match(recovered, { ok: true, attempts: 2 }, 'a reset is retried')
})

t.test('CONNECT_FAILED: nothing listens on the port', async (t) => {
  const port = await closedPort()
  const r = await fetchPage(agent, `http://127.0.0.1:${port}/`, { ...opts, retries: 1 }, never, recordSleeps())
  t.match(r, { ok: false, status: null, finalUrl: `http://127.0.0.1:${port}/`, attempts: 2, error: { code: 'CONNECT_FAILED', message: /ECONNREFUSED/ } })
})

t.test('TLS_FAILED: https to a server that does not speak TLS', async (t) => {
  const r = await fetchPage(agent, `https://127.0.0.1:${target.port}/`, { ...opts, retries: 2 }, never, recordSleeps())
  t.match(r, { ok: false, status: null, attempts: 1, error: { code: 'TLS_FAILED' } })
})

t.test('the agent’s own timeouts are classified too', async (t) => {
  const strict = createDispatcher({ guard: createAddressGuard(['127.0.0.0/8']), headersTimeoutMs: 100, bodyTimeoutMs: 100 })
  t.teardown(() => strict.destroy())
  const headers = await fetchPage(strict, target.url('/slow-headers'), opts, never)
  t.match(headers, { error: { code: 'TIMEOUT', message: /[Hh]eaders [Tt]imeout/ } })
  // undici's timers tick about every 500 ms, so the gap between chunks must be longer than that.
  const body = await fetchPage(strict, target.url('/trickle?every=1500'), opts, never)
  t.match(body, { status: 200, error: { code: 'TIMEOUT', message: /[Bb]ody [Tt]imeout/ } })
})
