import { hostsChannel } from './keys.js'
import type { Entry, EnterOptions, HostGate, HostGateOptions, WaitingFor } from './gate-types.js'
import type { AcquireReply, HostOutcome, Lease, ReleaseReply } from './slots.js'

export type { Entry, EnterOptions, HostGate, HostGateOptions, WaitingFor } from './gate-types.js'

interface Waiter {
  options: EnterOptions
  resolve(lease: Lease): void
  reject(err: unknown): void
  signal?: AbortSignal
  onAbort?: () => void
}

// One per host and job: the waiters of this process, FIFO, and what Redis last refused.
interface Queue {
  key: string
  host: string
  waiters: Waiter[]
  blocked: { waitingFor: WaitingFor, untilMs: number } | null
  timer?: NodeJS.Timeout
  draining: boolean
  // A wake came while a request was on its way: its refusal may be stale.
  woken: boolean
}

const reason = (r: AcquireReply): WaitingFor => (r.kind === 'paused' || r.kind === 'spaced' ? 'pause' : 'host')

export async function createHostGate (o: HostGateOptions): Promise<HostGate> {
  const { slots, subscriber, leaseMs } = o
  const fallbackMs = o.fallbackMs ?? leaseMs
  const channel = hostsChannel(o.prefix)
  const queues = new Map<string, Queue>()
  const byHost = new Map<string, Set<Queue>>()
  const held = new Map<string, Lease>()
  let commands = 0
  let lost = 0
  let closed = false

  const onMessage = (ch: string, host: string) => {
    if (ch === channel) for (const q of byHost.get(host) ?? []) wake(q)
  }
  // Messages sent while the connection was away are lost: everyone asks again once it is back.
  const onReady = () => {
    commands++
    subscriber.subscribe(channel).catch(() => {})
    for (const q of queues.values()) wake(q)
  }
  subscriber.on('message', onMessage)
  subscriber.on('ready', onReady)
  commands++
  await subscriber.subscribe(channel)

  const renewer = setInterval(() => {
    if (held.size === 0) return
    const leases = [...held.values()]
    commands += new Set(leases.map((l) => `${l.host}\n${l.jobId ?? ''}`)).size
    slots.renew(leases, leaseMs).then((n) => { lost += leases.length - n }, () => {})
  }, Math.max(100, Math.floor(leaseMs / 2)))
  renewer.unref()

  function queueFor (host: string, job: string | undefined): Queue {
    const key = `${host}\n${job ?? ''}`
    let q = queues.get(key)
    if (q) return q
    q = { key, host, waiters: [], blocked: null, draining: false, woken: false }
    queues.set(key, q)
    let set = byHost.get(host)
    if (!set) byHost.set(host, (set = new Set()))
    set.add(q)
    return q
  }

  function tidy (q: Queue) {
    if (q.waiters.length > 0 || q.blocked !== null || q.draining) return
    queues.delete(q.key)
    const set = byHost.get(q.host)
    set?.delete(q)
    if (set?.size === 0) byHost.delete(q.host)
  }

  function wake (q: Queue) {
    clearTimeout(q.timer)
    q.blocked = null
    q.woken = true
    if (q.waiters.length > 0) drain(q).catch(() => {})
    else tidy(q)
  }

  function block (q: Queue, r: AcquireReply) {
    q.blocked = { waitingFor: reason(r), untilMs: r.untilMs }
    clearTimeout(q.timer)
    // Paused and spaced hosts open at a known time; a full one when a release says so, or
    // (a lost message, a dead holder) when its soonest lease lapses, but at most `fallbackMs`.
    const ms = r.kind === 'paused' || r.kind === 'spaced' ? r.waitMs + 1 : Math.min(Math.max(r.waitMs + 1, 20), fallbackMs)
    q.timer = setTimeout(() => wake(q), ms)
    q.timer.unref()
  }

  async function acquire (host: string, options: EnterOptions): Promise<AcquireReply> {
    commands++
    const reply = await slots.acquire(host, { ...options, leaseMs })
    if (reply.kind === 'granted') held.set(reply.lease.id, reply.lease)
    return reply
  }

  async function drain (q: Queue) {
    if (q.draining) return
    q.draining = true
    try {
      while (q.waiters.length > 0) {
        if (closed) break
        q.woken = false
        const head = q.waiters[0] as Waiter
        const reply = await acquire(q.host, head.options)
        if (reply.kind === 'granted') {
          hand(q, head, reply.lease)
        } else if (!q.woken) {
          block(q, reply)
          break
        }
      }
    } catch (err) {
      for (const w of q.waiters.splice(0)) w.reject(err)
    } finally {
      q.draining = false
      tidy(q)
    }
  }

  // The head waiter takes the lease; one that gave up meanwhile passes it on.
  function hand (q: Queue, head: Waiter, lease: Lease) {
    const i = q.waiters.indexOf(head)
    if (i >= 0) {
      q.waiters.splice(i, 1)
      if (head.onAbort) head.signal?.removeEventListener('abort', head.onAbort)
      head.resolve(lease)
    } else {
      leave(lease).catch(() => {})
    }
  }

  function enter (host: string, options: EnterOptions, signal?: AbortSignal): Promise<Lease> {
    return new Promise<Lease>((resolve, reject) => {
      if (closed) return reject(new Error('host gate closed'))
      if (signal?.aborted) return reject(signal.reason)
      const q = queueFor(host, options.job?.id)
      const w: Waiter = { options, resolve, reject, signal }
      if (signal) {
        w.onAbort = () => {
          const i = q.waiters.indexOf(w)
          if (i >= 0) q.waiters.splice(i, 1)
          tidy(q)
          reject(signal.reason)
        }
        signal.addEventListener('abort', w.onAbort, { once: true })
      }
      q.waiters.push(w)
      if (q.blocked === null) drain(q).catch(() => {})
    })
  }

  async function tryEnter (host: string, options: EnterOptions): Promise<Entry> {
    if (closed) throw new Error('host gate closed')
    const known = queues.get(`${host}\n${options.job?.id ?? ''}`)
    if (known && (known.blocked !== null || known.waiters.length > 0)) {
      return { lease: null, ...(known.blocked ?? { waitingFor: 'host', untilMs: 0 }) }
    }
    const reply = await acquire(host, options)
    if (reply.kind === 'granted') return { lease: reply.lease }
    const q = queueFor(host, options.job?.id)
    if (q.blocked === null && !q.draining) block(q, reply)
    return { lease: null, waitingFor: reason(reply), untilMs: reply.untilMs }
  }

  function leave (lease: Lease, outcome?: HostOutcome): Promise<ReleaseReply> {
    held.delete(lease.id)
    commands++
    return slots.release(lease, outcome)
  }

  async function state (host: string) {
    commands++
    const s = await slots.state(host)
    let waiting = 0
    for (const q of byHost.get(host) ?? []) waiting += q.waiters.length
    return { ...s, waiting }
  }

  async function close () {
    if (closed) return
    closed = true
    clearInterval(renewer)
    subscriber.off('message', onMessage)
    subscriber.off('ready', onReady)
    for (const q of queues.values()) {
      clearTimeout(q.timer)
      for (const w of q.waiters.splice(0)) w.reject(new Error('host gate closed'))
    }
    queues.clear()
    byHost.clear()
    await subscriber.unsubscribe(channel).catch(() => {})
  }

  return {
    enter,
    tryEnter,
    leave,
    pause: (host, ms) => { commands++; return slots.pause(host, ms) },
    state,
    close,
    get commands () { return commands },
    get held () { return held.size },
    get lost () { return lost }
  }
}
