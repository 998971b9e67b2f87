/**
 * The Lua scripts against a real Redis, called directly through the loader (src/redis/scripts.ts):
 * lanes/step.lua and jobs/finish.lua under the races the lanes design has to survive.
 */
import { Redis } from 'ioredis'
import t, { type Test } from 'tap'
import { jobKeys, tenantPendingKey } from '../../src/jobs/keys.js'
import { createJobStore } from '../../src/jobs/redis-store.js'
import { DEFAULT_OPTIONS, type StoredResult } from '../../src/jobs/schemas.js'
import { unfinishedResult } from '../../src/jobs/store.js'
import { headerNames, queueScriptBatch, runScript, scriptSources, SCRIPTS, type ScriptArgs } from '../../src/redis/scripts.js'
import { TEST_REDIS_URL, testPrefix } from '../helpers/redis.js'

const TTL_MS = 60_000
const TENANT = 'team-a'
let jobNo = 0

const ok = (status = 200): StoredResult => ({
  state: 'succeeded', status, finalUrl: null, contentType: 'text/plain', bytes: 5, durationMs: 1, attempts: 1, error: null, hasContent: false, sha256: null
})

/** A job of `n` URLs created by the real store, its URLs admitted for its tenant, and script callers. */
async function setup (t: Test, n: number) {
  const prefix = testPrefix(t, 'scripts')
  const redis = new Redis(TEST_REDIS_URL)
  t.teardown(() => redis.disconnect())
  const store = createJobStore(redis, { prefix, ttlSeconds: TTL_MS / 1000 })
  const id = `j_01JSCR1PTS0000000000000${String(jobNo++).padStart(3, '0')}`
  const urls = Array.from({ length: n }, (_, i) => `http://127.0.0.1:9/${i}`)
  await store.create({ id, tenant: TENANT, urls, options: { ...DEFAULT_OPTIONS }, now: Date.now() })
  const pending = tenantPendingKey(prefix, TENANT)
  await redis.set(pending, n)
  const keys = { ...jobKeys(prefix, id), pending }
  const stepArgs = (lane: number, index: number, result: StoredResult | null, claim = true): ScriptArgs<'trawlStep'> => ({
    lane,
    index,
    result: result ? JSON.stringify(result) : '',
    outcome: result?.state === 'succeeded' ? 'succeeded' : 'failed',
    bytes: result?.bytes ?? 0,
    now: Date.now(),
    ttl: TTL_MS,
    channel: store.channel,
    claim: claim ? '1' : '0',
    park: '',
    host: '',
    skip: '',
    want: '',
    paused: ''
  })
  const step = (lane: number, index: number, result: StoredResult | null, claim = true) =>
    runScript(redis, 'trawlStep', keys, stepArgs(lane, index, result, claim)).then((replies) => replies[0])
  const finish = (state: 'cancelled' | 'failed') => runScript(redis, 'trawlFinish', keys, {
    state, error: '', now: Date.now(), ttl: TTL_MS, channel: store.channel, result: JSON.stringify(unfinishedResult(state, null)), tenant: TENANT
  })
  const meta = async () => {
    const m = await redis.hgetall(keys.meta)
    return { state: m.state, succeeded: Number(m.succeeded), failed: Number(m.failed), cancelled: Number(m.cancelled), running: Number(m.running) }
  }
  const resultEvents = async () => (await redis.xrange(keys.events, '-', '+')).filter(([, f]) => f[1] === 'result').map(([, f]) => Number(f[3]))
  const pendingCount = async () => Number(await redis.get(pending))
  // The counters each state event carries (the whole meta hash, time stamps left out).
  const COUNTERS = ['state', 'total', 'next', 'running', 'succeeded', 'failed', 'bytes']
  const stateEvents = async () => (await redis.xrange(keys.events, '-', '+')).filter(([, f]) => f[1] === 'state').map(([, f]) => {
    const flat = JSON.parse(f[3] as string) as string[]
    const fields = Object.fromEntries(Array.from({ length: flat.length / 2 }, (_, i) => [flat[2 * i], flat[2 * i + 1]]))
    return Object.fromEntries(COUNTERS.map((k) => [k, fields[k]]))
  })
  const counters = async () => {
    const m = await redis.hgetall(keys.meta)
    return Object.fromEntries(COUNTERS.map((k) => [k, m[k]]))
  }
  return { redis, store, prefix, id, keys, step, stepArgs, finish, meta, resultEvents, stateEvents, counters, pendingCount }
}

t.test('every script header names KEYS and ARGV as the loader table does', async (t) => {
  const sources = scriptSources()
  t.same([...sources.keys()].sort(), Object.keys(SCRIPTS).sort())
  for (const [name, spec] of Object.entries(SCRIPTS)) {
    const lua = sources.get(name as keyof typeof SCRIPTS) ?? ''
    t.ok(lua.length > 0, `${name} is loaded`)
    t.equal(lua.includes('local function touch'), spec.prelude, `${name}: the prelude is prepended only where asked`)
  }
  t.same(headerNames('--[[\n  KEYS[1] a\n  KEYS[2] b\n]]\nreturn 1', 'KEYS'), ['a', 'b'])
  t.throws(() => headerNames('--[[\n  KEYS[2] b\n  KEYS[1] a\n]]', 'KEYS'), /out of order/)
})

t.test('step: a second report of an index changes nothing, so it is counted once', async (t) => {
  const s = await setup(t, 3)
  t.same(await s.step(0, -1, null), [1, 0, 'http://127.0.0.1:9/0'], 'the lane takes index 0 and starts the job')
  t.same(await s.step(0, 0, ok()), [1, 1, 'http://127.0.0.1:9/1'], 'its report takes the next index')
  t.same(await s.meta(), { state: 'running', succeeded: 1, failed: 0, cancelled: 0, running: 1 })
  // The same index again, as from a worker that was taken over but still ran, this time failed.
  t.same(await s.step(0, 0, { ...ok(500), state: 'failed' }, false), [0])
  t.same(await s.meta(), { state: 'running', succeeded: 1, failed: 0, cancelled: 0, running: 1 }, 'counts are as before')
  t.same(JSON.parse(await s.redis.hget(s.keys.results, '0') ?? 'null'), ok(), 'the first result stands')
  t.same(await s.resultEvents(), [0], 'one result event for index 0')
  t.equal(await s.pendingCount(), 2, 'the tenant count went down once')
  t.equal(await s.redis.hget(s.keys.held, '0'), '1', 'the lane still holds the index it was given')
})

t.test('step: a lane run again after its worker died takes over the index it held', async (t) => {
  const s = await setup(t, 3)
  t.same(await s.step(0, -1, null), [1, 0, 'http://127.0.0.1:9/0'], 'worker A runs lane 0 and takes index 0, then dies')
  t.same(await s.step(0, -1, null), [1, 0, 'http://127.0.0.1:9/0'], 'worker B runs lane 0 again: the held index, not a new one')
  t.same(await s.step(1, -1, null), [1, 1, 'http://127.0.0.1:9/1'], 'another lane never gets a held index')
  t.same(await s.meta(), { state: 'running', succeeded: 0, failed: 0, cancelled: 0, running: 2 }, 'index 0 runs once')
  t.same(await s.step(0, 0, ok()), [1, 2, 'http://127.0.0.1:9/2'], 'worker B reports it and goes on')
  t.same(await s.step(0, 0, ok(201), false), [0], 'worker A comes back late with the same index')
  t.same(await s.meta(), { state: 'running', succeeded: 1, failed: 0, cancelled: 0, running: 2 })
  t.same(JSON.parse(await s.redis.hget(s.keys.results, '0') ?? 'null'), ok(), 'B\'s result stands')
  t.equal(await s.redis.hget(s.keys.held, '0'), '2', 'A\'s late report does not free the index B holds now')
  t.same(await s.step(1, 1, ok()), [0], 'lane 1 finds nothing left to take')
  t.same(await s.step(0, 2, ok()), [2], 'the last report completes the job')
  t.same(await s.meta(), { state: 'completed', succeeded: 3, failed: 0, cancelled: 0, running: 0 })
  t.equal(await s.pendingCount(), 0)
})

t.test('step: several steps of a job in one call run as if each were a call of its own', async (t) => {
  const seq: Array<[number, number, StoredResult | null, boolean]> = [
    [0, -1, null, true], [1, -1, null, true], [0, -1, null, true], [0, 0, ok(), true], [0, 0, ok(201), false],
    [1, 1, { ...ok(500), state: 'failed' }, true], [2, -1, null, true], [0, 2, ok(), true], [2, 3, ok(), true],
    // After the job completed: a late report and a claim, both told the job is over.
    [1, 1, ok(), true], [3, -1, null, true]
  ]
  const one = await setup(t, 4)
  const apart = []
  for (const [lane, index, result, claim] of seq) apart.push(await one.step(lane, index, result, claim))
  const all = await setup(t, 4)
  const pipeline = all.redis.pipeline()
  queueScriptBatch(pipeline, 'trawlStep', all.keys, seq.map(([lane, index, result, claim]) => all.stepArgs(lane, index, result, claim)))
  const [[err, together]] = await pipeline.exec() as Array<[Error | null, unknown]> as [[Error | null, unknown]]
  t.equal(err, null)
  t.same(together, apart, 'the same replies, in order')
  t.same(apart.slice(-3), [[2], [-1], [-1]], 'the ninth completed the job, the two after it were told it is over')
  t.same(await all.meta(), await one.meta())
  t.same(await all.counters(), await one.counters(), 'the same counters, bytes and cursor')
  t.same(await all.stateEvents(), await one.stateEvents(), 'the same state events, each with the counters of its moment')
  const events = await all.stateEvents()
  t.same(events.map((e) => e.state), ['queued', 'running', 'completed'])
  t.same(events.at(-1), { ...await all.counters(), succeeded: '3', failed: '1', running: '0' }, 'the completed event carries the final counters')
  t.same(await all.resultEvents(), await one.resultEvents(), 'the same result events, each once')
  t.same(await all.redis.hgetall(all.keys.results), await one.redis.hgetall(one.keys.results))
  t.equal(await all.pendingCount(), await one.pendingCount())
})

t.test('finish: a completed job is left as it is', async (t) => {
  const s = await setup(t, 1)
  await s.step(0, -1, null)
  t.same(await s.step(0, 0, ok()), [2], 'the job completes')
  const before = await s.redis.hgetall(s.keys.meta)
  const events = await s.redis.xlen(s.keys.events)
  t.equal(await s.finish('cancelled'), 'completed', 'cancel answers the state it found')
  t.equal(await s.finish('failed'), 'completed', 'and so does a failure')
  t.same(await s.redis.hgetall(s.keys.meta), before, 'the record is unchanged')
  t.equal(await s.redis.xlen(s.keys.events), events, 'no event was added')
  t.equal(await s.pendingCount(), 0, 'the tenant count is not taken down twice')
})

t.test('finish: a step that reports after a cancel changes nothing, and the counts add up', async (t) => {
  const s = await setup(t, 4)
  await s.step(0, -1, null)
  await s.step(1, -1, null)
  t.same(await s.step(0, 0, ok()), [1, 2, 'http://127.0.0.1:9/2'], 'lane 0 reports index 0 and takes index 2')
  t.equal(await s.finish('cancelled'), 'running', 'the cancel finds the job running')
  t.same(await s.step(1, 1, ok()), [-1], 'lane 1 reports index 1 after the cancel: the job is over')
  t.same(await s.step(0, 2, ok(), true), [-1], 'and so is lane 0\'s')
  const m = await s.meta()
  t.same(m, { state: 'cancelled', succeeded: 1, failed: 0, cancelled: 3, running: 0 })
  t.equal(m.succeeded + m.failed + m.cancelled, 4, 'succeeded + failed + cancelled = total')
  t.same(await s.redis.hkeys(s.keys.results), ['0'], 'no late result was written')
  t.same((await s.resultEvents()).sort(), [0, 1, 2, 3], 'one result event per URL')
  t.equal(await s.pendingCount(), 0, 'every admitted URL was counted down once')
  t.equal(await s.redis.exists(s.keys.held), 0, 'no lane holds an index')
  t.equal(await s.finish('cancelled'), 'cancelled', 'a second cancel changes nothing')
  t.equal(await s.pendingCount(), 0)
})

t.test('step and finish on a job that does not exist', async (t) => {
  const s = await setup(t, 1)
  await s.redis.del(s.keys.meta)
  t.same(await s.step(0, -1, null), [-3], 'step answers -3')
  t.equal(await s.finish('failed'), 'missing', 'finish answers missing')
})

t.test('step parks the cursor\'s URLs on skipped hosts ahead, without a round trip each', async (t) => {
  const s = await setup(t, 0)
  const id = 'j_01JSCR1PTS0000000000AHEAD0'
  const urls = [
    ...Array.from({ length: 70 }, (_, i) => `http://user:pw@A.Test:8080/${i}`),
    'http://[::1]:9/ipv6', 'http://b\u00fccher.test/idn', 'http://b.test/last'
  ]
  await s.store.create({ id, tenant: TENANT, urls, options: { ...DEFAULT_OPTIONS }, now: Date.now() })
  await s.redis.set(tenantPendingKey(s.prefix, TENANT), urls.length)
  const blocked = { skip: ['a.test', '[::1]', 'xn--bcher-kva.test'], paused: ['a.test'] }
  // The script itself: 32 parked ahead per call, then "call again" (4), and the store does.
  const raw = () => runScript(s.redis, 'trawlStep', { ...jobKeys(s.prefix, id), pending: tenantPendingKey(s.prefix, TENANT) }, {
    lane: 0,
    index: -1,
    result: '',
    outcome: 'failed',
    bytes: 0,
    now: Date.now(),
    ttl: TTL_MS,
    channel: s.store.channel,
    claim: '1',
    park: '',
    host: '',
    skip: blocked.skip.join(' '),
    want: '',
    paused: blocked.paused.join(' ')
  }).then((replies) => replies[0])
  t.same(await raw(), [4])
  t.same(await raw(), [4])
  t.same(await s.store.step(id, TENANT, 0, null, blocked), { kind: 'fetch', index: 71, url: 'http://b\u00fccher.test/idn', parked: null },
    'the IDN host reads differently in the script: not parked ahead, the lane parks it as before')
  const parked = await s.redis.hgetall(jobKeys(s.prefix, id).parked)
  t.equal(Object.keys(parked).length, 71)
  t.same(JSON.parse(parked['5'] ?? 'null'), { waitingFor: 'pause', host: 'a.test', attempts: 0, spent: 0, pausedAt: null }, 'userinfo, port and case: the host name as the URL parser reads it')
  t.match(JSON.parse(parked['70'] ?? 'null'), { waitingFor: 'host', host: '[::1]' })
  const page = await s.store.readRecord(id, { withResults: true, offset: 0, limit: 3 })
  t.same([...page?.page?.waiting ?? []], [[0, 'pause'], [1, 'pause'], [2, 'pause']], 'they read as pending, waiting for the pause')
  t.same(await s.store.step(id, TENANT, 1, null, blocked), { kind: 'fetch', index: 72, url: 'http://b.test/last', parked: null })
  t.same(await s.store.step(id, TENANT, 2, null, blocked), { kind: 'blocked', hosts: ['[::1]', 'a.test'] })
  t.match(await s.store.step(id, TENANT, 2, null, { want: 'a.test' }), { kind: 'fetch', index: 0, url: urls[0] }, 'a slot on the host takes them in order')
  t.equal(await s.redis.hget(jobKeys(s.prefix, id).meta, 'running'), '3', 'parked ahead, they were never running')
})

t.test('step parks an index by host: claims skip blocked hosts, prefer a wanted one, and a crash loses nothing', async (t) => {
  const s = await setup(t, 0)
  const id = 'j_01JSCR1PTS00000000000PARK0'
  const urls = ['http://a.test/0', 'http://a.test/1', 'http://b.test/2', 'http://a.test/3']
  await s.store.create({ id, tenant: TENANT, urls, options: { ...DEFAULT_OPTIONS }, now: Date.now() })
  await s.redis.set(tenantPendingKey(s.prefix, TENANT), urls.length)
  const park = (host: string, attempts = 0) => ({ waitingFor: 'host' as const, host, attempts, spent: 0, pausedAt: null })
  const step = s.store.step.bind(null, id, TENANT)
  t.match(await step(0, null, true), { kind: 'fetch', index: 0 })
  t.match(await step(1, null, true), { kind: 'fetch', index: 1 })
  // a.test is full: lane 0 parks index 0 and, told to skip a.test, gets the cursor's next.
  t.match(await step(0, { index: 0, park: park('a.test', 1) }, { skip: ['a.test'] }), { kind: 'fetch', index: 2 })
  const page = await s.store.readRecord(id, { withResults: true, offset: 0, limit: 4 })
  t.same([...page?.page?.waiting ?? []], [[0, 'host']], 'the parked index reads as waiting for its host')
  t.equal(page?.meta.running, 2, 'a parked index is pending, not running')
  t.same(await step(1, { index: 1, park: park('a.test') }, { skip: ['a.test'] }), { kind: 'blocked', hosts: ['a.test'] },
    'the cursor\'s next URL (3) is on the skipped host too: parked ahead, and only parked URLs of skipped hosts are left')
  t.same(JSON.parse(await s.redis.hget(jobKeys(s.prefix, id).parked, '3') ?? 'null'), park('a.test'), 'parked ahead: waiting for its host, no attempt yet')
  t.same(await s.redis.hget(jobKeys(s.prefix, id).held, '1'), null, 'parking freed the lane\'s hold')
  // Lane 1 waited and won a slot on a.test: it asks for a.test's parked URLs first.
  const taken = await step(1, null, { want: 'a.test' })
  t.same(taken, { kind: 'fetch', index: 0, url: 'http://a.test/0', parked: park('a.test', 1) }, 'the oldest parked a.test index, with the attempts it carried')
  // The worker running lane 1 dies; the lane runs again elsewhere and gets the same index and record.
  t.same(await step(1, null, true), taken, 'a crash loses no parked index and no attempt count')
  t.same(await step(5, { index: 1, park: park('a.test') }, true), { kind: 'fetch', index: 1, url: 'http://a.test/1', parked: park('a.test') },
    'a lane that does not hold an index cannot park it; a claim without skip takes a parked one')
  await step(1, { index: 0, result: ok() }, false)
  t.equal(await s.redis.hexists(jobKeys(s.prefix, id).parked, '0'), 0, 'a written result drops the parked record')
  await s.store.finish(id, 'cancelled', null, TENANT)
  t.same(await s.redis.exists(jobKeys(s.prefix, id).parked, jobKeys(s.prefix, id).parkq), 0, 'a cancel drops the parked URLs')
})
