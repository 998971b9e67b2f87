import { setImmediate as turn } from 'node:timers/promises'
import { Redis } from 'ioredis'
import t, { type Test } from 'tap'
import { createFinishWatcher, type FinishWatcher } from '../../src/events/finish-watcher.js'
import { closeRedis, createRedis } from '../../src/redis/connections.js'
import { eventually, within } from '../helpers/eventually.js'
import { clientsNamed, TEST_REDIS_URL, testPrefix } from '../helpers/redis.js'

// The finish watcher against a real Redis: waits keyed by job id, woken by a PUBLISH of the id
// on the finished channel, whichever process publishes it.

const PROMPT_MS = 1000
const LONG_MS = 30_000

interface Watched {
  watcher: FinishWatcher
  channel: string
  subscriberName: string
  /** Publishes and inspects, on a connection of the test's own. */
  redis: Redis
  publish(id: string): Promise<void>
}

async function startWatcher (t: Test): Promise<Watched> {
  const prefix = testPrefix(t, 'watch')
  const channel = `${prefix}:finished`
  const subscriberName = `${prefix}-subscriber`
  const subscriber = createRedis({ REDIS_URL: TEST_REDIS_URL }, 'subscriber', subscriberName)
  const redis = new Redis(TEST_REDIS_URL)
  const watcher = await createFinishWatcher(subscriber, channel)
  t.teardown(async () => {
    await watcher.close()
    await Promise.all([closeRedis(subscriber), closeRedis(redis)])
  })
  return {
    watcher,
    channel,
    subscriberName: `trawl:${subscriberName}`,
    redis,
    publish: async (id) => { await redis.publish(channel, id) }
  }
}

/** A wait, and whether it has ended yet. */
function track (wait: Promise<void>) {
  const state = { ended: false, promise: wait.then(() => { state.ended = true }) }
  return state
}

t.test('wait() ends on a PUBLISH of its id, for every waiter of that id and no other', async (t) => {
  const w = await startWatcher(t)
  const [a1, a2, b] = [track(w.watcher.wait('j_a', LONG_MS)), track(w.watcher.wait('j_a', LONG_MS)), track(w.watcher.wait('j_b', LONG_MS))]
  await w.publish('j_a')
  t.not(await within(PROMPT_MS, Promise.all([a1.promise, a2.promise])), 'late', 'both waiters of j_a end')
  // One message wakes its waiters in one go: had it woken b, b would have ended by the next turn.
  await turn()
  t.notOk(b.ended, 'the waiter of j_b still waits')
  await w.publish('j_b')
  t.not(await within(PROMPT_MS, b.promise), 'late', 'and ends on its own id')
})

t.test('wait() ends after `ms` when nothing is published', async (t) => {
  const w = await startWatcher(t)
  const started = Date.now()
  await w.watcher.wait('j_never', 100)
  const took = Date.now() - started
  t.ok(took >= 95 && took < PROMPT_MS, `after about 100 ms (${took} ms)`)
})

t.test('wait() ends when its signal aborts', async (t) => {
  const w = await startWatcher(t)
  const controller = new AbortController()
  const waiting = track(w.watcher.wait('j_abort', LONG_MS, controller.signal))
  const other = track(w.watcher.wait('j_abort', LONG_MS))
  await turn()
  t.notOk(waiting.ended)
  controller.abort()
  t.not(await within(PROMPT_MS, waiting.promise), 'late', 'the aborted wait ends at once')
  await turn()
  t.notOk(other.ended, 'another wait of the same id goes on')
  await w.publish('j_abort')
  await other.promise
})

t.test('wait() given a signal that has already aborted ends at once', async (t) => {
  const w = await startWatcher(t)
  const waiting = w.watcher.wait('j_aborted', LONG_MS, AbortSignal.abort())
  t.not(await within(PROMPT_MS, waiting), 'late', 'the wait ends without waiting for `ms`')
})

t.test('close() releases every waiter; later waits end at once', async (t) => {
  const w = await startWatcher(t)
  const waits = [w.watcher.wait('j_1', LONG_MS), w.watcher.wait('j_1', LONG_MS), w.watcher.wait('j_2', LONG_MS)]
  t.equal(w.watcher.closed, false)
  await w.watcher.close()
  t.not(await within(PROMPT_MS, Promise.all(waits)), 'late', 'every wait ends')
  t.equal(w.watcher.closed, true)
  t.not(await within(PROMPT_MS, w.watcher.wait('j_3', LONG_MS)), 'late', 'a wait after close ends at once')
  await w.watcher.close()
})

t.test('after its connection is killed the watcher subscribes again and wakes waiters', async (t) => {
  const w = await startWatcher(t)
  const subscribers = async () => ((await w.redis.pubsub('NUMSUB', w.channel)) as [string, number])[1]
  t.equal(await subscribers(), 1, 'subscribed')
  const before = track(w.watcher.wait('j_before', LONG_MS))
  const [client] = await clientsNamed(w.redis, w.subscriberName)
  t.match(client, { flags: /P/ }, 'the watcher\'s connection is a pub/sub one')
  await w.redis.client('KILL', 'ID', client?.id ?? '')
  t.equal(await subscribers(), 0, 'the channel has no subscriber once the connection is gone')
  // The resubscription is the watcher's own, on `ready`: nothing tells the test when it lands.
  await eventually(async () => await subscribers() === 1, { what: 'the watcher subscribes again', timeoutMs: 10_000 })
  const [again] = await clientsNamed(w.redis, w.subscriberName)
  t.not(again?.id, client?.id, 'on a new connection')

  t.notOk(before.ended, 'a wait made before the kill is still waiting')
  const after = track(w.watcher.wait('j_after', LONG_MS))
  await w.publish('j_before')
  await w.publish('j_after')
  t.not(await within(PROMPT_MS, Promise.all([before.promise, after.promise])), 'late', 'waits from before and after the kill both wake')
})
