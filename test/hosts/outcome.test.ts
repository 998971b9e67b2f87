import t from 'tap'
import { hostKeys, hostOf } from '../../src/hosts/keys.js'
import { hostOutcome, MAX_PAUSE_MS, pauseFromRetryAfter } from '../../src/hosts/outcome.js'

t.test('Retry-After: seconds or an HTTP date, capped at 5 minutes', async (t) => {
  const now = Date.parse('2025-01-01T00:00:00Z')
  t.equal(pauseFromRetryAfter('3', now), 3000)
  t.equal(pauseFromRetryAfter(' 0 ', now), 0)
  t.equal(pauseFromRetryAfter('Wed, 01 Jan 2025 00:00:10 GMT', now), 10_000)
  t.equal(pauseFromRetryAfter('Tue, 31 Dec 2024 23:00:00 GMT', now), 0, 'a date gone by')
  t.equal(pauseFromRetryAfter('86400', now), MAX_PAUSE_MS)
  t.equal(pauseFromRetryAfter(['7', '9'], now), 7000)
  t.equal(pauseFromRetryAfter('Wednesday, 01-Jan-25 00:00:05 GMT', now), 5000, 'the obsolete RFC 850 form')
  t.equal(pauseFromRetryAfter('soon', now), undefined)
  t.equal(pauseFromRetryAfter('-1', now), undefined)
  t.equal(pauseFromRetryAfter(undefined, now), undefined)
})

t.test('what a response says about its host', async (t) => {
  t.same(hostOutcome(429, '2'), { kind: 'pause', ms: 2000 })
  t.same(hostOutcome(503, '2'), { kind: 'pause', ms: 2000 })
  t.same(hostOutcome(429, undefined), { kind: 'strike' })
  t.same(hostOutcome(503, '0'), { kind: 'strike' }, 'Retry-After: 0 cannot make a hammer loop')
  t.same(hostOutcome(200, undefined), { kind: 'ok' })
  t.same(hostOutcome(404, '5'), { kind: 'ok' })
  t.same(hostOutcome(500, undefined), { kind: 'ok' }, 'a server that answers is no reason to pause')
  t.same(hostOutcome(0, undefined), { kind: 'none' })
})

t.test('hosts and their keys', async (t) => {
  t.equal(hostOf('http://Example.COM:8080/a'), 'example.com')
  t.equal(hostOf(new URL('http://[::1]:1/')), '[::1]')
  const k = hostKeys('p', 'example.com')
  t.equal(k.slots, 'p:host:{example.com}:slots')
  t.equal(k.job('J1'), 'p:host:{example.com}:job:J1')
  t.equal(k.robots('http://example.com:8080'), 'p:host:{example.com}:robots:http://example.com:8080')
  t.equal(hostKeys('p', 'a}b').state, 'p:host:{a%7Db}:state', 'a brace cannot end the hash tag early')
})
