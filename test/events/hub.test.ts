import { Redis } from 'ioredis'
import { pino } from 'pino'
import t, { type Test } from 'tap'
import { createEventHub, type EventHub, type StreamEntry } from '../../src/events/hub.js'
import { closeRedis, createRedis } from '../../src/redis/connections.js'
import { eventually, within } from '../helpers/eventually.js'
import { clientsNamed, TEST_REDIS_URL, testPrefix } from '../helpers/redis.js'

// The event hub against a real Redis: one blocking XREAD for every stream its subscribers
// follow. "Promptly" below means well inside the 2 s a blocked read waits before it is issued
// again: a delivery that only came with that backstop would lose the race with the timer.

const PROMPT_MS = 1000

interface Hub {
  hub: EventHub
  /** Writes and inspects, on a connection of the test's own. */
  redis: Redis
  key(name: string): string
  readerName: string
  add(key: string, n: number): Promise<string[]>
  /** Resolves once the hub's reader is blocked in XREAD. */
  blocked(): Promise<void>
}

async function startHub (t: Test): Promise<Hub> {
  const prefix = testPrefix(t, 'hub')
  const readerName = `${prefix}-reader`
  const reader = createRedis({ REDIS_URL: TEST_REDIS_URL }, 'subscriber', readerName)
  const control = createRedis({ REDIS_URL: TEST_REDIS_URL }, 'producer', `${prefix}-control`)
  const redis = new Redis(TEST_REDIS_URL)
  const hub = createEventHub(reader, control, pino({ level: 'silent' }))
  t.teardown(async () => {
    await hub.close()
    await Promise.all([closeRedis(reader), closeRedis(control), closeRedis(redis)])
  })
  let seq = 0
  return {
    hub,
    redis,
    readerName: `trawl:${readerName}`,
    key: (name) => `${prefix}:events:${name}`,
    add: async (key, n) => {
      const ids: string[] = []
      for (let i = 0; i < n; i++) ids.push(String(await redis.xadd(key, '*', 'n', String(seq++))))
      return ids
    },
    // Nothing announces that a read has begun to block: ask Redis.
    blocked: async () => {
      await eventually(async () => (await clientsNamed(redis, `trawl:${readerName}`)).some((c) => c.cmd === 'xread' && c.flags?.includes('b')), { what: 'the hub reader blocks in XREAD', intervalMs: 5 })
    }
  }
}

/** A subscriber's deliveries, and a way to await the next ones. */
function inbox () {
  const batches: StreamEntry[][] = []
  const waiters: Array<{ n: number, resolve: () => void }> = []
  const ids = () => batches.flat().map(([id]) => id)
  return {
    batches,
    ids,
    deliver: (entries: StreamEntry[]) => {
      batches.push(entries)
      for (const w of waiters.splice(0)) {
        if (ids().length >= w.n) w.resolve()
        else waiters.push(w)
      }
    },
    /** Resolves once `n` entries in all have been delivered. */
    until: (n: number) => new Promise<void>((resolve) => {
      if (ids().length >= n) resolve()
      else waiters.push({ n, resolve })
    })
  }
}

/** A new subscriber of `key`, arriving while the read is blocked, gets the entry waiting there promptly. */
async function joinsPromptly (t: Test, h: Hub, key: string, what: string) {
  const [waiting] = await h.add(key, 1)
  const joined = inbox()
  h.hub.subscribe(key, '0-0', joined.deliver)
  t.not(await within(PROMPT_MS, joined.until(1)), 'late', what)
  t.same(joined.ids(), [waiting])
}

t.test('a subscriber gets the entries after `after`, then each new one, in order', async (t) => {
  const h = await startHub(t)
  const key = h.key('a')
  const old = await h.add(key, 3)
  const box = inbox()
  h.hub.subscribe(key, old[0] as string, box.deliver)
  await box.until(2)
  t.same(box.ids(), old.slice(1), 'the entries after the one named, not that one')
  const live = await h.add(key, 2)
  await box.until(4)
  t.same(box.ids(), [...old.slice(1), ...live], 'then the live ones, each once')
  t.same(box.batches.flat().map(([, fields]) => fields), [['n', '1'], ['n', '2'], ['n', '3'], ['n', '4']], 'with their fields')
  t.equal(h.hub.size, 1)
})

t.test('two subscribers of one stream, each from its own place; subscribers of two streams', async (t) => {
  const h = await startHub(t)
  const [one, two] = [h.key('one'), h.key('two')]
  const old = await h.add(one, 3)
  const [early, late, other] = [inbox(), inbox(), inbox()]
  h.hub.subscribe(one, old[1] as string, late.deliver)
  h.hub.subscribe(one, '0-0', early.deliver)
  h.hub.subscribe(two, '0-0', other.deliver)
  await Promise.all([early.until(3), late.until(1)])
  t.same(early.ids(), old, 'the earlier subscriber gets the whole stream')
  t.same(late.ids(), old.slice(2), 'the later one only what it has not seen')
  const [liveOne] = await h.add(one, 1)
  const [liveTwo] = await h.add(two, 1)
  await Promise.all([early.until(4), late.until(2), other.until(1)])
  t.same(late.ids(), [old[2], liveOne], 'a live entry reaches both subscribers of the stream')
  t.same(early.ids(), [...old, liveOne])
  t.same(other.ids(), [liveTwo], 'and only the subscribers of its own stream')
  t.equal(h.hub.size, 3)
})

t.test('a subscriber joining while the read is blocked gets its entries promptly (CLIENT UNBLOCK)', async (t) => {
  const h = await startHub(t)
  const [first, second] = [h.key('first'), h.key('second')]
  const box = inbox()
  h.hub.subscribe(first, '0-0', box.deliver)
  // A delivery makes the hub issue a fresh read: it now blocks for its full 2 s.
  await h.add(first, 1)
  await box.until(1)
  await h.blocked()

  await joinsPromptly(t, h, second, 'a new stream joins the read at once')

  // An earlier `after` on a stream already read moves its cursor back: the same interruption.
  await h.blocked()
  const again = inbox()
  h.hub.subscribe(first, '0-0', again.deliver)
  t.not(await within(PROMPT_MS, again.until(1)), 'late', 'a subscriber from further back is served at once')
  t.same(again.ids(), box.ids(), 'with the entries the first subscriber had already had')
})

t.test('unsubscribe stops delivery to that subscriber only, and is safe to call twice', async (t) => {
  const h = await startHub(t)
  const key = h.key('u')
  const [gone, stays] = [inbox(), inbox()]
  const off = h.hub.subscribe(key, '0-0', gone.deliver)
  h.hub.subscribe(key, '0-0', stays.deliver)
  await h.add(key, 1)
  await Promise.all([gone.until(1), stays.until(1)])
  off()
  off()
  t.equal(h.hub.size, 1, 'one subscription left')
  await h.add(key, 1)
  // Both subscribers of a stream are served in the same turn: once `stays` has it, `gone` would too.
  await stays.until(2)
  t.equal(gone.ids().length, 1, 'nothing after unsubscribe')

  const lastOff = h.hub.subscribe(h.key('v'), '0-0', () => {})
  lastOff()
  t.equal(h.hub.size, 1)
})

t.test('close() ends the loop, even with a read blocked, and is safe to call twice', async (t) => {
  const h = await startHub(t)
  const box = inbox()
  h.hub.subscribe(h.key('c'), '0-0', box.deliver)
  await h.add(h.key('c'), 1)
  await box.until(1)
  await h.blocked()
  t.not(await within(PROMPT_MS, h.hub.close()), 'late', 'close() interrupts the blocked read')
  t.not(await within(PROMPT_MS, h.hub.close()), 'late', 'a second close() returns too')
  await h.add(h.key('c'), 1)
  t.same(await clientsNamed(h.redis, h.readerName).then((cs) => cs.filter((c) => c.cmd === 'xread' && c.flags?.includes('b'))), [], 'nothing reads any more')
  t.equal(box.ids().length, 1)

  // A hub with no subscriber waits without reading; close() ends that wait too.
  const idle = await startHub(t)
  t.not(await within(PROMPT_MS, idle.hub.close()), 'late', 'an idle hub closes at once')
})

t.test('reconnect: after CLIENT KILL of the reader, delivery resumes, nothing lost or doubled', async (t) => {
  const h = await startHub(t)
  const [key, other] = [h.key('r'), h.key('s')]
  const box = inbox()
  h.hub.subscribe(key, '0-0', box.deliver)
  const [before] = await h.add(key, 1)
  await box.until(1)
  await h.blocked()
  const [reader] = await clientsNamed(h.redis, h.readerName)
  await h.redis.client('KILL', 'ID', reader?.id ?? '')
  // Written while the reader is away: the hub's cursor brings it once the connection is back.
  const [during] = await h.add(key, 1)
  await box.until(2)
  const [after] = await h.add(key, 1)
  await box.until(3)
  t.same(box.ids(), [before, during, after], 'each entry once, in order')
  const [again] = await clientsNamed(h.redis, h.readerName)
  t.not(again?.id, reader?.id, 'on a new connection')

  // The new connection has a new id: a joining subscriber must still interrupt the read.
  await h.blocked()
  await joinsPromptly(t, h, other, 'CLIENT UNBLOCK reaches the new connection')
})
