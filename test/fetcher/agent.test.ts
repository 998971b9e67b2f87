import type { LookupAddress } from 'node:dns'
import t from 'tap'
import { request } from 'undici'
import { createDispatcher, createGuardedLookup, DEFAULT_USER_AGENT } from '../../src/fetcher/agent.js'
import type { LookupAll } from '../../src/fetcher/agent.js'
import { fetchPage } from '../../src/fetcher/fetch-page.js'
import type { FetchOptions } from '../../src/fetcher/fetch-page.js'
import { createAddressGuard } from '../../src/fetcher/guard.js'
import type { AddressGuard } from '../../src/fetcher/guard.js'
import { startTargetServer, watchOutboundConnections } from '../helpers/target-server.js'
import { fetchKept } from './fixtures.js'

const opts: FetchOptions = { timeoutMs: 3000, maxBytes: 1 << 20, maxRedirects: 5, headers: {}, retries: 0 }
const LOOPBACK = ['127.0.0.0/8', '::1/128']
const never = new AbortController().signal

interface Teardown { teardown (fn: () => unknown): void }

function closedAgent (t: Teardown, lookup?: LookupAll) {
  const agent = createDispatcher({ guard: createAddressGuard([]), lookup })
  t.teardown(() => agent.destroy())
  return agent
}

function openAgent (t: Teardown, allow = LOOPBACK, lookup?: LookupAll) {
  const agent = createDispatcher({ guard: createAddressGuard(allow), lookup })
  t.teardown(() => agent.destroy())
  return agent
}

/** A resolver that answers from a table and never asks the network. */
function fakeLookup (table: Record<string, string[] | (() => string[]) | NodeJS.ErrnoException>): LookupAll & { calls: string[] } {
  const calls: string[] = []
  const lookup = (hostname: string, _opts: unknown, cb: (err: NodeJS.ErrnoException | null, addresses: LookupAddress[]) => void): void => {
    calls.push(hostname)
    const entry = table[hostname]
    setImmediate(() => {
      if (entry === undefined) {
        cb(Object.assign(new Error(`getaddrinfo ENOTFOUND ${hostname}`), { code: 'ENOTFOUND' }), [])
      } else if (entry instanceof Error) {
        cb(entry, [])
      } else {
        const list = typeof entry === 'function' ? entry() : entry
        cb(null, list.map((address) => ({ address, family: address.includes(':') ? 6 : 4 })))
      }
    })
  }
  return Object.assign(lookup, { calls })
}

t.test('the URL parser already turns every IPv4 spelling into dotted quads', async (t) => {
  for (const host of ['2130706433', '0177.0.0.1', '0x7f.0.0.1', '0x7f000001', '127.1', '0177.0.0.01']) {
    t.equal(new URL(`http://${host}:8080/`).hostname, '127.0.0.1', host)
  }
  t.equal(new URL('http://[::ffff:127.0.0.1]/').hostname, '[::ffff:7f00:1]')
  t.equal(new URL('http://[0:0:0:0:0:0:0:1]/').hostname, '[::1]')
})

t.test('loopback in any spelling', async (t) => {
  const v4 = await startTargetServer(t)
  const v6 = await startTargetServer(t, { host: '::1' })
  const forms = [
    v4.url('/status?code=200'),
    `http://2130706433:${v4.port}/status?code=200`,
    `http://0177.0.0.1:${v4.port}/status?code=200`,
    `http://0x7f.0.0.1:${v4.port}/status?code=200`,
    `http://127.1:${v4.port}/status?code=200`,
    `http://[::ffff:7f00:1]:${v4.port}/status?code=200`,
    `http://[::ffff:127.0.0.1]:${v4.port}/status?code=200`,
    `http://localhost:${v4.port}/status?code=200`,
    `http://LOCALHOST:${v4.port}/status?code=200`,
    v6.url('/status?code=200')
  ]

  t.test('is refused without an allow list, before any connection', async (t) => {
    const watch = watchOutboundConnections(t)
    const agent = closedAgent(t)
    for (const url of forms) {
      const r = await fetchPage(agent, url, opts, never)
      t.equal(r.error?.code, 'BLOCKED_ADDRESS', url)
      t.equal(r.status, null)
      t.equal(r.attempts, 1, 'a refusal is not retried')
    }
    t.equal(v4.connections() + v6.connections(), 0, 'the target saw no connection')
    t.same(watch.connectedTo, [], 'no socket connected anywhere')
  })

  t.test('reaches the target with loopback allowed', async (t) => {
    const agent = openAgent(t)
    for (const url of forms) {
      const r = await fetchPage(agent, url, opts, never)
      t.equal(r.ok, true, url)
      t.equal(r.status, 200)
    }
  })
})

t.test('ranges an allow list does not open stay refused, and no packet leaves', async (t) => {
  const target = await startTargetServer(t)
  const watch = watchOutboundConnections(t)
  const agent = openAgent(t)
  const urls = [
    // 0.0.0.0 reaches local listeners on Linux: the allow list for 127/8 must not open it.
    `http://0.0.0.0:${target.port}/`,
    `http://0:${target.port}/`,
    `http://[::]:${target.port}/`,
    'http://169.254.169.254/latest/meta-data/',
    'http://[::ffff:169.254.169.254]/latest/meta-data/',
    'http://[::ffff:a9fe:a9fe]/',
    'http://[64:ff9b::a9fe:a9fe]/',
    'http://2852039166/',
    'http://100.64.0.1/',
    'http://100.100.100.200/latest/meta-data/',
    'http://[fd00:ec2::254]/latest/meta-data/',
    'http://[fe80::1]/',
    'http://10.0.0.1/',
    'http://172.16.0.1/',
    'http://192.168.0.1/',
    'http://224.0.0.1/',
    'http://255.255.255.255/',
    'http://[ff02::1]/',
    'https://169.254.169.254/',
    'https://10.0.0.1:8443/'
  ]
  for (const url of urls) {
    const r = await fetchPage(agent, url, opts, never)
    t.equal(r.error?.code, 'BLOCKED_ADDRESS', url)
  }
  t.equal(watch.created(), 0, 'no socket was even created')
  t.equal(target.connections(), 0)
})

t.test('a redirect to a refused address is refused before connecting', async (t) => {
  const target = await startTargetServer(t)
  const watch = watchOutboundConnections(t)
  const agent = openAgent(t)
  const hops = [
    'http://169.254.169.254/latest/meta-data/iam/security-credentials/',
    'http://10.0.0.1/admin',
    'http://[::ffff:a9fe:a9fe]/',
    'http://[fd00:ec2::254]/latest/meta-data/',
    'http://100.100.100.200/latest/meta-data/',
    `http://0.0.0.0:${target.port}/status?code=200`,
    'https://192.168.1.1/'
  ]
  for (const to of hops) {
    const r = await fetchPage(agent, target.url(`/redirect?to=${encodeURIComponent(to)}`), { ...opts, retries: 2 }, never)
    t.match(r, { ok: false, status: 302, finalUrl: new URL(to).href, attempts: 1, error: { code: 'BLOCKED_ADDRESS' } }, to)
  }
  t.equal(target.requests.filter((p) => p.startsWith('/status')).length, 0, '0.0.0.0 did not reach the local target')
  t.same(new Set(watch.connectedTo), new Set(['127.0.0.1']), 'only the first hop was ever connected to')
  t.equal(watch.created(), watch.connectedTo.length, 'and no other socket was even opened')

  const narrow = openAgent(t, ['127.0.0.1/32'])
  const r = await fetchPage(narrow, target.url(`/redirect?to=${encodeURIComponent(`http://127.0.0.2:${target.port}/status?code=200`)}`), opts, never)
  t.match(r, { status: 302, error: { code: 'BLOCKED_ADDRESS' } }, 'loopback outside the allow list')
})

t.test('names are judged on what they resolve to', async (t) => {
  const target = await startTargetServer(t)
  const watch = watchOutboundConnections(t)
  let rebinds = 0
  const lookup = fakeLookup({
    'metadata.test': ['169.254.169.254'],
    'mixed.test': ['127.0.0.1', '10.0.0.1'],
    'mixed6.test': ['127.0.0.1', 'fd00::1'],
    'target.test': ['127.0.0.1'],
    'nothing.test': [],
    'rebind.test': () => rebinds++ === 0 ? ['127.0.0.1'] : ['10.0.0.1'],
    'flaky-dns.test': Object.assign(new Error('getaddrinfo EAI_AGAIN flaky-dns.test'), { code: 'EAI_AGAIN' })
  })
  const agent = openAgent(t, LOOPBACK, lookup)

  let r = await fetchPage(agent, `http://metadata.test:${target.port}/`, opts, never)
  t.equal(r.error?.code, 'BLOCKED_ADDRESS')
  t.match(r.error?.message, /^metadata\.test resolves to an address downloads may not reach/)
  t.notMatch(r.error?.message, /169\.254/, 'the tenant is not told what the name resolved to')

  r = await fetchPage(agent, `http://mixed.test:${target.port}/`, opts, never)
  t.equal(r.error?.code, 'BLOCKED_ADDRESS', 'one refused address refuses the name')
  r = await fetchPage(agent, `http://mixed6.test:${target.port}/`, opts, never)
  t.equal(r.error?.code, 'BLOCKED_ADDRESS', 'also across families')

  const kept = await fetchKept(agent, `http://target.test:${target.port}/headers`, opts, never)
  t.equal(kept.ok, true, 'an allowed answer is connected to')
  t.equal(JSON.parse(String(kept.body)).host, `target.test:${target.port}`)

  r = await fetchPage(agent, `http://rebind.test:${target.port}/status?code=200`, opts, never)
  t.equal(r.ok, true, 'first answer: loopback, allowed')
  // Another origin, so a new connection and a new lookup, whose new answer is judged afresh.
  r = await fetchPage(agent, 'http://rebind.test:1/', opts, never)
  t.equal(r.error?.code, 'BLOCKED_ADDRESS', 'second answer: private, refused')

  r = await fetchPage(agent, 'http://nothing.test/', opts, never)
  t.equal(r.error?.code, 'DNS_FAILED', 'an empty answer is a DNS failure')

  const sleeps: number[] = []
  r = await fetchPage(agent, 'http://flaky-dns.test/', { ...opts, retries: 2 }, never, { sleep: async (ms) => { sleeps.push(ms) } })
  t.equal(r.error?.code, 'DNS_FAILED')
  t.equal(r.attempts, 3, 'EAI_AGAIN is worth another try')
  t.equal(sleeps.length, 2)

  t.same(new Set(watch.connectedTo), new Set(['127.0.0.1']), 'only loopback was ever connected to')
})

t.test('the guarded lookup answers in the form it was asked for', async (t) => {
  const lookup = createGuardedLookup(createAddressGuard(LOOPBACK), fakeLookup({ 'two.test': ['127.0.0.1', '::1'] }))
  const one = await new Promise<unknown[]>((resolve) => lookup('two.test', {}, (...args) => resolve(args)))
  t.same(one, [null, '127.0.0.1', 4], 'one address, as net.connect asks without autoSelectFamily')
  const all = await new Promise<unknown[]>((resolve) => lookup('two.test', { all: true }, (...args) => resolve(args)))
  t.same(all, [null, [{ address: '127.0.0.1', family: 4 }, { address: '::1', family: 6 }]])
})

t.test('the address actually connected to is checked before a request is written', async (t) => {
  const target = await startTargetServer(t)
  // A guard that passes the first look and refuses the second stands in for any path that got a
  // socket to a refused address past the checks before the connection.
  let looks = 0
  const fickle: AddressGuard = {
    check: () => ++looks === 1,
    assertAllowed: () => {}
  }
  const agent = createDispatcher({ guard: fickle })
  t.teardown(() => agent.destroy())
  const r = await fetchPage(agent, target.url('/status?code=200'), opts, never)
  t.match(r, { status: null, error: { code: 'BLOCKED_ADDRESS', message: /127\.0\.0\.1/ } })
  t.equal(looks, 2)
  t.equal(target.connections(), 1, 'the socket had connected')
  t.same(target.requests, [], 'but no request was sent on it')
})

t.test('the User-Agent is added to every header form undici takes', async (t) => {
  const target = await startTargetServer(t)
  const agent = openAgent(t)
  const forms = {
    none: undefined,
    object: { 'x-form': 'object' },
    flat: ['x-form', 'flat'],
    iterable: new Map([['x-form', 'iterable']]),
    'flat with own': ['User-Agent', 'own/1'],
    'iterable with own': new Map([['user-agent', 'own/2']])
  }
  const seen: Record<string, string | undefined> = {}
  for (const [name, headers] of Object.entries(forms)) {
    const res = await request(target.url('/headers'), { dispatcher: agent, headers })
    seen[name] = ((await res.body.json()) as Record<string, string>)['user-agent']
  }
  t.same(seen, {
    none: DEFAULT_USER_AGENT,
    object: DEFAULT_USER_AGENT,
    flat: DEFAULT_USER_AGENT,
    iterable: DEFAULT_USER_AGENT,
    'flat with own': 'own/1',
    'iterable with own': 'own/2'
  })
})

t.test('a narrow allow list', async (t) => {
  const target = await startTargetServer(t)
  const agent = openAgent(t, ['127.0.0.1/32'])
  const r = await fetchPage(agent, `http://127.0.0.2:${target.port}/`, opts, never)
  t.equal(r.error?.code, 'BLOCKED_ADDRESS', '127.0.0.2 is outside 127.0.0.1/32')
  t.equal((await fetchPage(agent, target.url('/'), opts, never)).status, 404, '127.0.0.1 is inside')
})

t.test('User-Agent', async (t) => {
  const target = await startTargetServer(t)
  const ua = async (agent: ReturnType<typeof createDispatcher>, headers: Record<string, string> = {}) => {
    const r = await fetchKept(agent, target.url('/headers'), { ...opts, headers }, never)
    return JSON.parse(String(r.body)) as Record<string, string>
  }
  const agent = openAgent(t)
  const sent = await ua(agent)
  t.equal(sent['user-agent'], DEFAULT_USER_AGENT, 'a descriptive default')
  t.equal(sent['accept-encoding'], 'gzip, deflate, br')
  t.equal((await ua(agent, { 'User-Agent': 'caller/2.0' }))['user-agent'], 'caller/2.0', 'the caller’s own wins')

  const custom = createDispatcher({ guard: createAddressGuard(LOOPBACK), userAgent: 'trawl-test/1' })
  t.teardown(() => custom.destroy())
  t.equal((await ua(custom))['user-agent'], 'trawl-test/1')
})

t.test('unresolvable .invalid names fail fast with DNS_FAILED', async (t) => {
  const agent = openAgent(t)
  const started = Date.now()
  const r = await fetchPage(agent, 'http://trawl-test.invalid/', { ...opts, retries: 3 }, never)
  t.equal(r.error?.code, 'DNS_FAILED')
  t.equal(r.attempts, 1, 'ENOTFOUND is not retried')
  // Measured at about 30 ms here; the bound only tells a local NXDOMAIN from a resolver timeout.
  t.ok(Date.now() - started < 5000, `took ${Date.now() - started} ms`)
})
