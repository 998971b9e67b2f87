import t from 'tap'
import { request } from 'undici'
import { createHostSlots, type HostSlots } from '../../src/hosts/slots.js'
import { hostKeys } from '../../src/hosts/keys.js'
import { testPrefix } from '../helpers/redis.js'
import { connect, hold, startTarget } from './helpers.js'

const opts = { limit: 3, leaseMs: 5000, delayMs: 0 }

t.test('the cap holds at every instant, at the target, with many acquirers on many connections', async (t) => {
  const prefix = testPrefix(t, 'hosts-slots')
  const target = await startTarget(t, async (_req, res) => { await hold(5); res.end('ok') })
  const host = new URL(target.origin).hostname
  const workers: HostSlots[] = Array.from({ length: 6 }, () => createHostSlots(connect(t), { prefix }))
  let granted = 0
  let refused = 0
  await Promise.all(workers.flatMap((slots) => Array.from({ length: 4 }, async () => {
    for (let done = 0; done < 5;) {
      const reply = await slots.acquire(host, opts)
      if (reply.kind !== 'granted') {
        refused++
        // A bare retry loop on purpose: it presses on the script as hard as it can.
        await new Promise((resolve) => setImmediate(resolve))
        continue
      }
      granted++
      const res = await request(`${target.origin}/page`)
      await res.body.dump()
      await slots.release(reply.lease, { kind: 'ok' })
      done++
    }
  })))
  t.equal(granted, 6 * 4 * 5)
  t.ok(refused > 0, 'acquirers were turned away')
  t.equal(target.peak, 3, 'never more than the cap in flight at the target, and the cap was used')
  t.equal((await workers[0]!.state(host)).inFlight, 0)
})

t.test('leases of a holder that stops renewing lapse within leaseMs; renewed ones do not', async (t) => {
  const prefix = testPrefix(t, 'hosts-slots')
  const slots = createHostSlots(connect(t), { prefix })
  const o = { limit: 2, leaseMs: 300, delayMs: 0 }
  const a = await slots.acquire('dead.example', o)
  const b = await slots.acquire('dead.example', o)
  const live = await slots.acquire('live.example', { ...o, limit: 1 })
  t.equal(a.kind, 'granted')
  t.equal(b.kind, 'granted')
  if (live.kind !== 'granted') throw new Error('not granted')
  const full = await slots.acquire('dead.example', o)
  t.equal(full.kind, 'full')
  t.ok(full.waitMs > 0 && full.waitMs <= 300, 'the refusal says when the soonest lease lapses')
  // The live holder renews twice within the lease, as a worker does every leaseMs / 2.
  for (let i = 0; i < 3; i++) {
    await hold(150)
    t.equal(await slots.renew([live.lease], 300), 1)
  }
  t.equal((await slots.acquire('dead.example', o)).kind, 'granted', 'the dead holder\'s leases lapsed')
  t.equal((await slots.acquire('live.example', { ...o, limit: 1 })).kind, 'full', 'the renewed lease still holds')
  t.equal(await slots.renew([a.kind === 'granted' ? a.lease : live.lease], 300), 0, 'a lapsed lease is not brought back')
  const ttl = await connect(t).pttl(hostKeys(prefix, 'dead.example').slots)
  t.ok(ttl > 0 && ttl <= 300, 'the slots key itself expires')
})

t.test('a pause refuses every acquirer until it ends; a longer pause wins', async (t) => {
  const prefix = testPrefix(t, 'hosts-slots')
  const [one, two] = [createHostSlots(connect(t), { prefix }), createHostSlots(connect(t), { prefix })]
  const p = await one.pause('p.example', 250)
  await one.pause('p.example', 50)
  for (const slots of [one, two]) {
    const r = await slots.acquire('p.example', opts)
    t.equal(r.kind, 'paused')
    t.equal(r.untilMs, p.pausedUntil, 'the first, longer pause still stands')
  }
  const s = await two.state('p.example')
  t.equal(s.pausedUntil, p.pausedUntil)
  await hold(Math.max(0, p.pausedUntil - s.now) + 5)
  t.equal((await two.acquire('p.example', opts)).kind, 'granted')
})

t.test('429s without Retry-After pause with growing delays, capped, reset by a success', async (t) => {
  const prefix = testPrefix(t, 'hosts-slots')
  const slots = createHostSlots(connect(t), { prefix, strikeBaseMs: 100, strikeMaxMs: 400 })
  const pauses: number[] = []
  for (let i = 0; i < 4; i++) {
    const r = await slots.release({ host: 's.example', id: 'none' }, { kind: 'strike' })
    const s = await slots.state('s.example')
    pauses.push(r.pausedUntil - s.now)
    t.equal(s.strikes, i + 1)
    await connect(t).hdel(hostKeys(prefix, 's.example').state, 'pausedUntil')
  }
  t.ok(pauses[0]! <= 100 && pauses[0]! > 50, `first pause ~100 ms (${pauses[0]})`)
  t.ok(pauses[1]! <= 200 && pauses[1]! > 150, `then ~200 ms (${pauses[1]})`)
  t.ok(pauses[2]! <= 400 && pauses[2]! > 350, `then ~400 ms (${pauses[2]})`)
  t.ok(pauses[3]! <= 400 && pauses[3]! > 350, `capped at 400 ms (${pauses[3]})`)
  await slots.release({ host: 's.example', id: 'none' }, { kind: 'ok' })
  t.equal((await slots.state('s.example')).strikes, 0, 'a success resets the counter')
  const again = await slots.release({ host: 's.example', id: 'none' }, { kind: 'strike' })
  t.ok(again.strikes === 1 && again.pausedUntil > 0)
  const burst = await slots.release({ host: 's.example', id: 'none' }, { kind: 'strike' })
  t.equal(burst.strikes, 0, 'a 429 while the host is paused (the same burst) is no new strike')
  t.equal((await slots.state('s.example')).strikes, 1)
})

t.test('spacing: starts on a host are delayMs apart', async (t) => {
  const prefix = testPrefix(t, 'hosts-slots')
  const slots = createHostSlots(connect(t), { prefix })
  const o = { limit: 0, leaseMs: 5000, delayMs: 120 }
  const first = await slots.acquire('d.example', o)
  t.equal(first.kind, 'granted')
  const second = await slots.acquire('d.example', o)
  t.equal(second.kind, 'spaced')
  t.ok(second.waitMs > 60 && second.waitMs <= 120, `the next start is ~120 ms away (${second.waitMs})`)
  await hold(second.waitMs + 2)
  const third = await slots.acquire('d.example', o)
  t.equal(third.kind, 'granted')
  t.ok(third.untilMs - first.untilMs >= 120, 'granted no sooner than the spacing allows')
  t.equal((await slots.state('d.example')).delayMs, 120)
})

t.test('a job may hold fewer leases on a host than the host cap; other jobs are not held back', async (t) => {
  const prefix = testPrefix(t, 'hosts-slots')
  const slots = createHostSlots(connect(t), { prefix })
  const o = { limit: 5, leaseMs: 5000, delayMs: 0 }
  const a1 = await slots.acquire('j.example', { ...o, job: { id: 'A', limit: 1 } })
  t.equal(a1.kind, 'granted')
  t.equal((await slots.acquire('j.example', { ...o, job: { id: 'A', limit: 1 } })).kind, 'job-full')
  t.equal((await slots.acquire('j.example', { ...o, job: { id: 'B', limit: 1 } })).kind, 'granted')
  t.equal((await slots.state('j.example')).inFlight, 2, 'a job-full refusal takes no host slot')
  if (a1.kind !== 'granted') return
  t.equal(await slots.renew([a1.lease], 5000), 1)
  t.ok((await slots.release(a1.lease)).released)
  t.notOk((await slots.release(a1.lease)).released, 'a second release changes nothing')
  t.equal((await slots.acquire('j.example', { ...o, job: { id: 'A', limit: 1 } })).kind, 'granted')
})
