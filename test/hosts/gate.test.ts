import { spawn } from 'node:child_process'
import { once } from 'node:events'
import { createInterface } from 'node:readline'
import t, { type Test } from 'tap'
import { request } from 'undici'
import { Redis } from 'ioredis'
import { eventually } from '../helpers/eventually.js'
import { testPrefix, TEST_REDIS_URL } from '../helpers/redis.js'
import { hold, startTarget, worker } from './helpers.js'

const one = { limit: 1, delayMs: 0 }

// Every command the connection on local port `port` sends, seen by Redis itself (MONITOR).
async function monitor (t: Test, port: number): Promise<{ seen: string[] }> {
  const base = new Redis(TEST_REDIS_URL)
  const m = await base.monitor()
  t.teardown(() => {
    m.disconnect()
    base.disconnect()
  })
  const log = { seen: [] as string[] }
  m.on('monitor', (_time: string, args: string[], source: string) => {
    if (source.endsWith(`:${port}`)) log.seen.push(args[0] ?? '')
  })
  return log
}

t.test('a waiter wakes on a release from another worker promptly, sending nothing while it waits', async (t) => {
  const prefix = testPrefix(t, 'hosts-gate')
  // Leases of a minute: the waiter's own fallback wake-up is then far beyond anything the
  // release message takes, however loaded the machine is.
  const a = await worker(t, prefix, 60_000)
  const b = await worker(t, prefix, 60_000)
  const lease = await a.gate.enter('w.example', one)
  const watched = await monitor(t, b.redis.stream.localPort as number)
  const before = b.gate.commands
  const entered = b.gate.enter('w.example', one)
  // The waiter's one refusal is the only thing it sends; then it is quiet until woken.
  const refusal = await b.gate.tryEnter('w.example', one)
  t.same(refusal, { lease: null, waitingFor: 'host', untilMs: refusal.lease === null ? refusal.untilMs : 0 }, 'tryEnter answers from what the process knows')
  // Time passes for the waiter while a real request is in flight (A's fetch of a slow page).
  const target = await startTarget(t, async (_req, res) => { await hold(300); res.end('ok') })
  await (await request(`${target.origin}/slow`)).body.dump()
  t.equal(b.gate.commands - before, 1, 'one acquire, then no command while waiting (the gate\'s count)')
  await b.redis.ping()
  // MONITOR reports asynchronously: the PING marks the end of what the waiter sent.
  await eventually(() => watched.seen.some((c) => c.toLowerCase() === 'ping'), { what: 'MONITOR to report the PING' })
  // ioredis sends a script as EVAL the first time on a connection, EVALSHA after.
  t.same(watched.seen.map((c) => c.toLowerCase().replace('evalsha', 'eval')), ['eval', 'ping'], `and Redis saw no more than that (${watched.seen.join(' ')})`)
  const released = performance.now()
  await a.gate.leave(lease, { kind: 'ok' })
  const got = await entered
  const ms = performance.now() - released
  t.ok(ms < 30_000, `woken by the release (${ms.toFixed(1)} ms after it), not by the 60 s fallback`)
  t.equal(got.host, 'w.example')
  t.equal(b.gate.held, 1)
  t.equal((await b.gate.state('w.example')).inFlight, 1)
})

t.test('the cap holds at the target with three workers waiting through their gates', async (t) => {
  const prefix = testPrefix(t, 'hosts-gate')
  const target = await startTarget(t, async (_req, res) => { await hold(10); res.end('ok') })
  const host = new URL(target.origin).hostname
  const workers = await Promise.all([1, 2, 3].map(() => worker(t, prefix)))
  await Promise.all(workers.flatMap(({ gate }) => Array.from({ length: 10 }, async () => {
    for (let i = 0; i < 4; i++) {
      const lease = await gate.enter(host, { limit: 4, delayMs: 0 })
      await (await request(`${target.origin}/x`)).body.dump()
      await gate.leave(lease, { kind: 'ok' })
    }
  })))
  t.equal(target.hits.get('/x'), 120)
  t.equal(target.peak, 4, 'at most 4 in flight at the target, and 4 were used')
  const commands = workers.reduce((n, w) => n + w.gate.commands, 0)
  t.ok(commands < 120 * 4, `no busy polling: ${commands} commands for 120 fetches`)
})

t.test('a pause wakes its waiters on a timer when it ends, and every worker sees it', async (t) => {
  const prefix = testPrefix(t, 'hosts-gate')
  const a = await worker(t, prefix)
  const b = await worker(t, prefix)
  const { pausedUntil } = await a.gate.pause('p.example', 300)
  const before = b.gate.commands
  const lease = await b.gate.enter('p.example', { limit: 8, delayMs: 0 })
  const s = await b.gate.state('p.example')
  t.ok(s.now >= pausedUntil, 'granted no sooner than the pause ends, on Redis\' clock')
  // The pause's own message (every pause is published) may reach B after its refusal: one more ask.
  const sent = b.gate.commands - before
  t.ok(sent === 3 || sent === 4, `a refusal, a grant, the state read, at most one ask on the pause's message: nothing else (${sent})`)
  await b.gate.leave(lease)
})

t.test('a pause set while others wait wakes them to learn of it', async (t) => {
  const prefix = testPrefix(t, 'hosts-gate')
  const a = await worker(t, prefix, 30_000)
  const b = await worker(t, prefix, 30_000)
  const lease = await a.gate.enter('q.example', one)
  const entered = b.gate.enter('q.example', one)
  await b.gate.tryEnter('q.example', one)
  // A's fetch got 429 + Retry-After: its release pauses the host; B, woken, waits for the end.
  const { pausedUntil } = await a.gate.leave(lease, { kind: 'pause', ms: 200 })
  await entered
  const s = await b.gate.state('q.example')
  t.ok(s.now >= pausedUntil && s.now - pausedUntil < 15_000, `B started when the pause ended (${s.now - pausedUntil} ms after), not after its 30 s fallback`)
})

t.test('spacing is kept across workers', async (t) => {
  const prefix = testPrefix(t, 'hosts-gate')
  const workers = await Promise.all([1, 2].map(() => worker(t, prefix)))
  const starts: number[] = []
  await Promise.all(workers.flatMap(({ gate }) => [1, 2].map(async () => {
    const lease = await gate.enter('d.example', { limit: 0, delayMs: 80 })
    starts.push((await gate.state('d.example')).now)
    await gate.leave(lease)
  })))
  starts.sort((x, y) => x - y)
  for (let i = 1; i < starts.length; i++) t.ok(starts[i]! - starts[i - 1]! >= 75, `start ${i} is ${starts[i]! - starts[i - 1]!} ms after the one before`)
})

t.test('an aborted wait ends at once and takes no slot', async (t) => {
  const prefix = testPrefix(t, 'hosts-gate')
  const { gate } = await worker(t, prefix)
  const lease = await gate.enter('a.example', one)
  const ac = new AbortController()
  const entered = gate.enter('a.example', one, ac.signal)
  ac.abort(new Error('lane cancelled'))
  await t.rejects(entered, { message: 'lane cancelled' })
  t.equal((await gate.state('a.example')).waiting, 0)
  await gate.leave(lease)
  t.equal((await gate.state('a.example')).inFlight, 0)
})

t.test('a worker killed with kill -9 holding slots frees them within leaseMs', async (t) => {
  const prefix = testPrefix(t, 'hosts-gate')
  const leaseMs = 1000
  const child = spawn(process.execPath, ['--import', 'tsx', new URL('./fixtures/holder.ts', import.meta.url).pathname, prefix, 'k.example', '2', String(leaseMs)], { stdio: ['ignore', 'pipe', 'inherit'] })
  t.teardown(() => { child.kill('SIGKILL') })
  const [line] = await once(createInterface({ input: child.stdout }), 'line')
  t.equal(line, 'held')
  const { gate } = await worker(t, prefix, leaseMs)
  // Held past several renewals: a live holder keeps its slots.
  await hold(leaseMs * 1.5)
  t.equal((await gate.tryEnter('k.example', { limit: 2, delayMs: 0 })).lease, null, 'the live holder keeps its slots')
  child.kill('SIGKILL')
  await once(child, 'exit')
  const killed = performance.now()
  const lease = await gate.enter('k.example', { limit: 2, delayMs: 0 })
  const ms = performance.now() - killed
  t.ok(ms <= leaseMs + 300, `a slot was free ${ms.toFixed(0)} ms after the kill`)
  await gate.leave(lease)
})

t.test('a pause set by another worker is told to this one; a release is not, and a grant clears it', async (t) => {
  const prefix = testPrefix(t, 'hosts-gate')
  const a = await worker(t, prefix, 30_000)
  const b = await worker(t, prefix, 30_000)
  // B waits on the host, so that A's release is published (someone wanted it).
  const held = await a.gate.enter('told.example', one)
  const entered = b.gate.enter('told.example', one)
  await b.gate.tryEnter('told.example', one)
  await a.gate.leave(held)
  const lease = await entered
  t.equal(b.gate.told('told.example'), false, 'a release (a wake) is not a pause')
  await b.gate.leave(lease)
  await a.gate.pause('told.example', 200)
  await eventually(async () => b.gate.told('told.example'), { what: 'B is told of the pause A set' })
  t.pass('B is told of the pause A set')
  const after = await b.gate.enter('told.example', one)
  t.equal(b.gate.told('told.example'), false, 'a slot granted after the pause clears it')
  await b.gate.leave(after)
})
