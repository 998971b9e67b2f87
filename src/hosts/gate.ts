import { hostsChannel } from './keys.js'
import { NOTHING_BLOCKED, reason, type BlockedHosts, type Entry, type EnterOptions, type HostGate, type HostGateOptions, type Queue, type Ticket, type Waiter } from './gate-types.js'
import type { AcquireReply, HostOutcome, Lease, ReleaseReply } from './slots.js'

export type { BlockedHosts, Entry, EnterOptions, HostGate, HostGateOptions, WaitingFor } from './gate-types.js'
export { NOTHING_BLOCKED } from './gate-types.js'

// Hosts named by a pause (or a wake) that this process should send through the gate.
const ATTENTION_MAX = 10_000

export async function createHostGate (o: HostGateOptions): Promise<HostGate> {
  const { slots, subscriber, leaseMs } = o
  const fallbackMs = o.fallbackMs ?? leaseMs
  const channel = hostsChannel(o.prefix)
  const queues = new Map<string, Queue>()
  const byHost = new Map<string, Set<Queue>>()
  const held = new Map<string, Lease>()
  const attention = new Set<string>()
  const pauses = new Set<string>()
  let commands = 0
  let lost = 0
  let closed = false

  const remember = (set: Set<string>, host: string) => {
    if (set.size >= ATTENTION_MAX) set.delete(set.values().next().value as string)
    set.add(host)
  }
  const notice = (host: string) => { remember(attention, host) }
  // A pause is also remembered apart, for told(): a slot kept from an earlier fetch asks again.
  const noticePause = (host: string) => {
    remember(attention, host)
    remember(pauses, host)
  }
  const wakeHost = (host: string) => { for (const q of byHost.get(host) ?? []) wake(q) }
  const onMessage = (ch: string, message: string) => {
    if (ch !== channel) return
    // release.lua publishes `pause <host>` for a pause and the bare name for a release (a host
    // name has no space).
    const pause = message.startsWith('pause ')
    const host = pause ? message.slice(6) : message
    if (pause) noticePause(host)
    else notice(host)
    wakeHost(host)
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

  function queueFor (host: string, job = ''): Queue {
    const key = `${host}\n${job}`
    let q = queues.get(key)
    if (q) return q
    q = { key, host, job, tickets: [], blocked: null, draining: false, woken: false }
    queues.set(key, q)
    let set = byHost.get(host)
    if (!set) byHost.set(host, (set = new Set()))
    set.add(q)
    return q
  }

  function tidy (q: Queue) {
    if (q.tickets.length > 0 || q.blocked !== null || q.draining) return
    queues.delete(q.key)
    const set = byHost.get(q.host)
    set?.delete(q)
    if (set?.size === 0) byHost.delete(q.host)
  }

  function wake (q: Queue) {
    clearTimeout(q.timer)
    q.blocked = null
    q.woken = true
    if (q.tickets.length > 0) drain(q).catch(() => {})
    else tidy(q)
  }

  function block (q: Queue, r: AcquireReply) {
    q.blocked = { waitingFor: reason(r), untilMs: r.untilMs, paused: r.kind === 'paused' }
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
    if (reply.kind === 'granted') {
      held.set(reply.lease.id, reply.lease)
      attention.delete(host)
      pauses.delete(host)
    } else if (reply.kind === 'paused') {
      noticePause(host)
    }
    return reply
  }

  async function drain (q: Queue) {
    if (q.draining) return
    q.draining = true
    try {
      while (q.tickets.length > 0) {
        if (closed) break
        q.woken = false
        const head = q.tickets[0] as Ticket
        const reply = await acquire(q.host, head.options)
        if (reply.kind === 'granted') {
          hand(q, reply.lease)
        } else if (!q.woken) {
          block(q, reply)
          break
        }
      }
    } catch (err) {
      for (const { w } of q.tickets.splice(0)) settle(w, null, err)
    } finally {
      q.draining = false
      tidy(q)
    }
  }

  // The first waiter still waiting takes the lease (one served elsewhere meanwhile has left).
  function hand (q: Queue, lease: Lease) {
    const ticket = q.tickets.find((t) => !t.w.settled)
    if (ticket) settle(ticket.w, lease)
    else leave(lease).catch(() => {})
  }

  function settle (w: Waiter, lease: Lease | null, err?: unknown) {
    if (w.settled) return
    w.settled = true
    for (const q of w.queues) {
      q.tickets = q.tickets.filter((t) => t.w !== w)
      tidy(q)
    }
    if (lease) w.resolve(lease)
    else w.reject(err)
  }

  function enterAny (wanted: ReadonlyArray<{ host: string, options: EnterOptions }>, signal?: AbortSignal): Promise<Lease> {
    return new Promise<Lease>((resolve, reject) => {
      if (closed) return reject(new Error('host gate closed'))
      if (signal?.aborted) return reject(signal.reason)
      const w: Waiter = { resolve, reject, settled: false, queues: [] }
      const onAbort = () => settle(w, null, signal?.reason)
      signal?.addEventListener('abort', onAbort, { once: true })
      w.resolve = (lease) => { signal?.removeEventListener('abort', onAbort); resolve(lease) }
      w.reject = (err) => { signal?.removeEventListener('abort', onAbort); reject(err) }
      for (const { host, options } of wanted) {
        const q = queueFor(host, options.job?.id)
        w.queues.push(q)
        q.tickets.push({ w, options })
      }
      for (const q of w.queues) if (q.blocked === null) drain(q).catch(() => {})
    })
  }

  async function tryEnter (host: string, options: EnterOptions): Promise<Entry> {
    if (closed) throw new Error('host gate closed')
    const known = queues.get(`${host}\n${options.job?.id ?? ''}`)
    if (known && (known.blocked !== null || known.tickets.length > 0)) {
      const { waitingFor, untilMs } = known.blocked ?? { waitingFor: 'host', untilMs: 0 }
      return { lease: null, waitingFor, untilMs }
    }
    const reply = await acquire(host, options)
    if (reply.kind === 'granted') return { lease: reply.lease }
    const q = queueFor(host, options.job?.id)
    if (q.blocked === null && !q.draining) block(q, reply)
    return { lease: null, waitingFor: reason(reply), untilMs: reply.untilMs }
  }

  async function leave (lease: Lease, outcome?: HostOutcome): Promise<ReleaseReply> {
    held.delete(lease.id)
    commands++
    const reply = await slots.release(lease, outcome)
    if (reply.pausedUntil > 0) noticePause(lease.host)
    // A slot of ours came free: this process's waiters need no message to learn it.
    if (reply.released) wakeHost(lease.host)
    return reply
  }

  function blockedFor (jobId: string): BlockedHosts {
    // Asked before every claim: nothing queued (the usual case) allocates nothing.
    if (queues.size === 0) return NOTHING_BLOCKED
    const hosts = new Set<string>()
    const paused = new Set<string>()
    for (const q of queues.values()) {
      if ((q.job === '' || q.job === jobId) && (q.blocked !== null || q.tickets.length > 0)) hosts.add(q.host)
      if (q.blocked?.waitingFor === 'pause') paused.add(q.host)
    }
    return { skip: [...hosts], paused: [...paused].filter((h) => hosts.has(h)) }
  }

  async function state (host: string) {
    commands++
    const s = await slots.state(host)
    let waiting = 0
    for (const q of byHost.get(host) ?? []) waiting += q.tickets.length
    return { ...s, waiting }
  }

  async function close () {
    if (closed) return
    closed = true
    clearInterval(renewer)
    subscriber.off('message', onMessage)
    subscriber.off('ready', onReady)
    const err = new Error('host gate closed')
    for (const q of [...queues.values()]) {
      clearTimeout(q.timer)
      for (const { w } of [...q.tickets]) settle(w, null, err)
    }
    queues.clear()
    byHost.clear()
    await subscriber.unsubscribe(channel).catch(() => {})
  }

  return {
    enter: (host, options, signal) => enterAny([{ host, options }], signal),
    enterAny,
    tryEnter,
    leave,
    record: (host, outcome) => leave({ host, id: '' }, outcome),
    pause: async (host, ms) => {
      commands++
      const reply = await slots.pause(host, ms)
      if (reply.pausedUntil > 0) noticePause(host)
      return reply
    },
    blockedFor,
    pausedHosts: () => {
      const hosts = new Set<string>()
      for (const q of queues.values()) if (q.blocked?.paused === true && q.tickets.length > 0) hosts.add(q.host)
      return hosts.size
    },
    watching: (host) => attention.has(host) || byHost.has(host),
    told: (host) => pauses.has(host),
    state,
    close,
    get commands () { return commands },
    get held () { return held.size },
    get lost () { return lost }
  }
}
