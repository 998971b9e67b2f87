import { EventEmitter, once } from 'node:events'
import { EventSource, type FetchLike } from 'eventsource'
import t, { type Test } from 'tap'
import { FINAL_JOB_STATES } from '../../src/jobs/schemas.js'
import { startGateServer } from '../helpers/gate-server.js'
import { within } from '../helpers/eventually.js'
import { startTrawl } from '../helpers/trawl.js'

// The event stream with a WHATWG EventSource as the client (the `eventsource` package, which
// behaves as browsers do): it reconnects whenever a stream closes, with Last-Event-ID, and stops
// only on a 204. The server's `retry:` is set small so reconnects come quickly.

const RETRY_MS = 100

interface Connection { status: number, lastEventId: string | null }

/** An EventSource over a fetch that records every connection it makes. */
function follow (t: Test, url: string) {
  const connections: Connection[] = []
  const made = new EventEmitter()
  const counting: FetchLike = async (input, init) => {
    const res = await fetch(input, init as RequestInit)
    connections.push({ status: res.status, lastEventId: new Headers(init.headers).get('last-event-id') })
    made.emit('connection')
    return res
  }
  const source = new EventSource(url, { fetch: counting })
  t.teardown(() => source.close())
  const events: Array<{ type: string, id: string, data: Record<string, unknown> }> = []
  const seen = new EventEmitter()
  for (const type of ['state', 'result']) {
    source.addEventListener(type, (e) => {
      events.push({ type, id: e.lastEventId, data: JSON.parse(e.data) as Record<string, unknown> })
      seen.emit('event')
    })
  }
  const until = async (done: () => boolean) => {
    while (!done()) await once(seen, 'event')
  }
  const untilFinal = () => until(() => events.some((e) => e.type === 'state' && FINAL_JOB_STATES.has(String(e.data.state))))
  const untilConnections = async (n: number) => {
    while (connections.length < n) await once(made, 'connection')
  }
  return { source, connections, events, made, until, untilFinal, untilConnections }
}

const RANK: Record<string, number> = { queued: 0, running: 1, completed: 2, failed: 2, cancelled: 2 }

t.test('a browser following a job to its end makes one more request, answered 204, and stops', async (t) => {
  const gate = await startGateServer()
  t.teardown(gate.close)
  const trawl = await startTrawl(t, { env: { SSE_RETRY_MS: String(RETRY_MS) } })
  const base = await trawl.api.app.listen({ port: 0, host: '127.0.0.1' })
  const urls = [gate.url('/fast/0'), gate.url('/hold/1')]
  const job = (await trawl.api.app.inject({ method: 'POST', url: '/jobs', payload: { urls, options: { concurrency: 2, retries: 0 } } })).json()
  await gate.untilWaiting(1)

  const client = follow(t, `${base}/jobs/${job.id}/events`)
  await client.untilConnections(1)
  gate.open()
  await client.untilFinal()
  const final = client.events[client.events.length - 1]
  t.equal(final?.data.state, 'completed', 'the final state is the last event')

  // The stream closed after the final event: the client reconnects once, with its id, gets a
  // 204 and closes for good.
  const closed = once(client.source, 'error')
  await client.untilConnections(2)
  t.same(client.connections[1], { status: 204, lastEventId: final?.id }, 'the reconnect names the final event and is answered 204')
  await closed
  t.equal(client.source.readyState, EventSource.CLOSED, 'the EventSource has stopped')
  const another = await within(10 * RETRY_MS, once(client.made, 'connection'))
  t.equal(another, 'late', `no further connection within ten retry intervals (${10 * RETRY_MS} ms)`)
  t.equal(client.connections.length, 2, 'two connections in all')
  t.equal(client.connections[0]?.status, 200)
  t.equal(client.events.filter((e) => e.type === 'result').length, 2, 'each result once')
})

t.test('a finished job\'s stream: the whole history, then one 204, also for an id past the end', async (t) => {
  const gate = await startGateServer()
  t.teardown(gate.close)
  const trawl = await startTrawl(t, { env: { SSE_RETRY_MS: String(RETRY_MS) } })
  const base = await trawl.api.app.listen({ port: 0, host: '127.0.0.1' })
  const job = (await trawl.api.app.inject({ method: 'POST', url: '/jobs', payload: { urls: [gate.url('/fast/a')] } })).json()
  t.equal((await trawl.api.app.inject(`/jobs/${job.id}?wait=10&results=none`)).json().state, 'completed')

  const client = follow(t, `${base}/jobs/${job.id}/events`)
  await client.untilFinal()
  await once(client.source, 'error')
  while (client.source.readyState !== EventSource.CLOSED) await once(client.source, 'error')
  t.same(client.events.map((e) => e.type === 'state' ? e.data.state : e.type), ['queued', 'running', 'result', 'completed'], 'the history, in order')
  t.same(client.connections.map((c) => c.status), [200, 204])

  const past = await fetch(`${base}/jobs/${job.id}/events?after=99999999999999-0`)
  t.equal(past.status, 204, 'an id later than the final event: 204 too')
  t.equal(past.headers.get('content-type'), null, 'with no event-stream headers')
  t.equal((await past.text()).length, 0, 'and no body')
})

t.test('a subscriber joining mid-job never sees the job go backwards', async (t) => {
  const gate = await startGateServer()
  t.teardown(gate.close)
  const trawl = await startTrawl(t, { env: { SSE_RETRY_MS: String(RETRY_MS) } })
  const base = await trawl.api.app.listen({ port: 0, host: '127.0.0.1' })
  const urls = [...Array.from({ length: 4 }, (_, i) => gate.url(`/fast/${i}`)), gate.url('/hold/4'), gate.url('/hold/5')]
  const job = (await trawl.api.app.inject({ method: 'POST', url: '/jobs', payload: { urls, options: { concurrency: 3, retries: 0 } } })).json()
  await gate.untilWaiting(2)
  const midway = (await trawl.api.app.inject(`/jobs/${job.id}?results=none`)).json()
  t.equal(midway.state, 'running', 'the job is running when the subscriber joins')

  const client = follow(t, `${base}/jobs/${job.id}/events`)
  // Some history has been replayed before the held URLs are let go.
  await client.until(() => client.events.filter((e) => e.type === 'result').length >= 4)
  gate.open()
  await client.untilFinal()

  t.equal(client.events[0]?.type, 'state', 'the stream opens with a state event')
  const states = client.events.filter((e) => e.type === 'state').map((e) => String(e.data.state))
  t.same(states, ['queued', 'running', 'completed'], 'each state once, in order')
  const ranks = states.map((s) => RANK[s] ?? -1)
  t.ok(ranks.every((r, i) => i === 0 || (ranks[i - 1] ?? 0) <= r), `states never go backwards: ${states.join(' -> ')}`)
  // A client that applies the events in order (a state replaces the counts, a result adds one)
  // ends with the job as it is.
  let succeeded = 0
  let most = 0
  for (const e of client.events) {
    if (e.type === 'state') succeeded = Number((e.data.counts as { succeeded: number }).succeeded)
    else if (e.data.state === 'succeeded') succeeded++
    most = Math.max(most, succeeded)
  }
  t.equal(most, urls.length, 'no count ever runs past the job')
  t.equal(succeeded, urls.length, 'applied in order, the events add up to the job')
  const ids = client.events.map((e) => e.id)
  t.ok(ids.every((id) => /^\d+-\d+$/.test(id)), 'every event carries a stream id to resume from')
})
