import t from 'tap'
import { compareIds } from '../../src/events/hub.js'
import { startGateServer } from '../helpers/gate-server.js'
import { startSeedSite } from '../helpers/seed.js'
import { eventually } from '../helpers/eventually.js'
import { asEvent, collect, openSse, type SseEvent } from '../helpers/sse.js'
import { startTrawl, type TestTrawl } from '../helpers/trawl.js'

// The event stream against a real listening server and real jobs.

async function listen (_t: unknown, trawl: TestTrawl): Promise<string> {
  const address = await trawl.api.app.listen({ port: 0, host: '127.0.0.1' })
  return address
}

function indexesOf (events: SseEvent[]): number[] {
  return events.filter((e) => e.event === 'result').map((e) => JSON.parse(e.data).index as number)
}

t.test('a fresh stream: the history from the job\'s creation, one result per URL, final state, then the end', async (t) => {
  const site = await startSeedSite()
  t.teardown(site.close)
  const trawl = await startTrawl(t, { worker: false })
  const base = await listen(t, trawl)
  const job = (await trawl.api.app.inject({ method: 'POST', url: '/jobs', payload: { urls: site.urls, options: { concurrency: 5 } } })).json()
  const stream = await openSse(`${base}/jobs/${job.id}/events`)
  t.equal(stream.status, 200)
  t.match(stream.contentType, /^text\/event-stream/)
  const items = stream.items()
  const first = (await items.next()).value
  t.same(first, { kind: 'retry', value: 2000 }, 'retry is sent once, first')
  const second = (await items.next()).value
  const created = asEvent(second?.kind === 'event' ? second.fields : {})
  t.equal(created.event, 'state', 'the stream opens with a state: the job as created')
  t.match(created.id, /^\d+-\d+$/, 'under its stream id, as every event')
  t.equal(JSON.parse(created.data).state, 'queued')
  t.equal(JSON.parse(created.data).results, undefined, 'state events carry no results')

  // Only now does a worker start: every event after the first is live.
  const { startWorker } = await import('../../src/roles/worker.js')
  const { pino } = await import('pino')
  const worker = startWorker(trawl.config, pino({ level: 'silent' }))
  t.teardown(() => worker.close(0))
  const rest: SseEvent[] = []
  for await (const item of items) if (item.kind === 'event') rest.push(asEvent(item.fields))
  const states = rest.filter((e) => e.event === 'state').map((e) => JSON.parse(e.data).state)
  t.same(states, ['running', 'completed'], 'then running, completed')
  t.same(indexesOf(rest).sort((a, b) => a - b), Array.from({ length: 15 }, (_, i) => i), 'every URL once')
  t.equal(rest[rest.length - 1]?.event, 'state', 'the final state is the last event')
  const last = JSON.parse(rest[rest.length - 1]?.data ?? '{}')
  t.same(last.counts, { pending: 0, running: 0, succeeded: 15, failed: 0, cancelled: 0 })
  const ids = [created, ...rest].map((e) => e.id as string)
  t.ok(ids.every((id, i) => i === 0 || compareIds(ids[i - 1] as string, id) < 0), 'ids strictly increase')
  const result = JSON.parse(rest.find((e) => e.event === 'result')?.data ?? '{}')
  t.match(result, { state: 'succeeded', status: 200, url: /^http:\/\/127\.0\.0\.1/, contentUrl: /^\/jobs\// })
})

t.test('resume with Last-Event-ID or ?after= at several points, on this and another API process', async (t) => {
  const site = await startSeedSite()
  t.teardown(site.close)
  const one = await startTrawl(t)
  const two = await startTrawl(t, { worker: false, prefix: one.prefix })
  const [baseOne, baseTwo] = [await listen(t, one), await listen(t, two)]
  const job = (await one.api.app.inject({ method: 'POST', url: '/jobs', payload: { urls: site.urls } })).json()
  await one.api.app.inject(`/jobs/${job.id}?wait=30`)

  const full = await collect(await openSse(`${baseOne}/jobs/${job.id}/events`))
  t.equal(JSON.parse(full[0]?.data ?? '{}').state, 'queued', 'the history starts where the job did')
  t.equal(indexesOf(full).length, 15, 'a finished job replays its whole history')
  t.equal(JSON.parse(full[full.length - 1]?.data ?? '{}').state, 'completed')
  for (const k of [0, 1, 7, full.length - 2]) {
    const lastSeen = full[k]?.id as string
    const viaHeader = await collect(await openSse(`${baseTwo}/jobs/${job.id}/events`, { 'last-event-id': lastSeen }))
    t.same(viaHeader, full.slice(k + 1), `resumed after event ${k} on the other API: nothing lost or doubled`)
    const viaQuery = await collect(await openSse(`${baseOne}/jobs/${job.id}/events?after=${lastSeen}`))
    t.same(viaQuery, full.slice(k + 1), `resumed after event ${k} with ?after=`)
  }
})

t.test('a dropped live stream resumes exactly where it stopped', async (t) => {
  const gate = await startGateServer()
  t.teardown(gate.close)
  const trawl = await startTrawl(t)
  const base = await listen(t, trawl)
  const urls = [...Array.from({ length: 6 }, (_, i) => gate.url(`/fast/${i}`)), ...Array.from({ length: 6 }, (_, i) => gate.url(`/hold/${i}`))]
  const job = (await trawl.api.app.inject({ method: 'POST', url: '/jobs', payload: { urls, options: { concurrency: 6 } } })).json()
  await gate.untilWaiting(6)
  const before = await collect(await openSse(`${base}/jobs/${job.id}/events`), 2 + 6)
  t.same(indexesOf(before).sort((a, b) => a - b), [0, 1, 2, 3, 4, 5])
  const resumed = await openSse(`${base}/jobs/${job.id}/events`, { 'last-event-id': before[before.length - 1]?.id as string })
  const collecting = collect(resumed)
  gate.open()
  const after = await collecting
  t.same(indexesOf(after).sort((a, b) => a - b), [6, 7, 8, 9, 10, 11], 'the rest, once each')
  t.equal(JSON.parse(after[after.length - 1]?.data ?? '{}').state, 'completed')
})

t.test('heartbeat comments while a slow target holds the job; cancel ends the stream', async (t) => {
  const gate = await startGateServer()
  t.teardown(gate.close)
  const trawl = await startTrawl(t, { env: { SSE_HEARTBEAT_MS: '150' } })
  const base = await listen(t, trawl)
  const job = (await trawl.api.app.inject({ method: 'POST', url: '/jobs', payload: { urls: [gate.url('/hold/a'), gate.url('/hold/b')] } })).json()
  await gate.untilWaiting(2)
  const stream = await openSse(`${base}/jobs/${job.id}/events`)
  let comments = 0
  const seen: SseEvent[] = []
  for await (const item of stream.items()) {
    if (item.kind === 'comment') {
      comments++
      if (comments === 2) await trawl.api.app.inject({ method: 'DELETE', url: `/jobs/${job.id}` })
    } else if (item.kind === 'event') {
      seen.push(asEvent(item.fields))
    }
  }
  t.ok(comments >= 2, 'comment lines keep the idle stream alive')
  t.same(seen.filter((e) => e.event === 'result').map((e) => JSON.parse(e.data).state), ['cancelled', 'cancelled'])
  t.equal(JSON.parse(seen[seen.length - 1]?.data ?? '{}').state, 'cancelled', 'the stream ends after the cancelled state')
})

t.test('hundreds of subscribe/abort cycles leave nothing behind', async (t) => {
  const gate = await startGateServer()
  t.teardown(gate.close)
  const trawl = await startTrawl(t)
  const base = await listen(t, trawl)
  const job = (await trawl.api.app.inject({ method: 'POST', url: '/jobs', payload: { urls: [gate.url('/hold/x')] } })).json()
  await gate.untilWaiting(1)
  for (let round = 0; round < 20; round++) {
    const streams = await Promise.all(Array.from({ length: 15 }, () => openSse(`${base}/jobs/${job.id}/events`)))
    await Promise.all(streams.map(async (s) => { const it = s.items(); await it.next(); await it.next() }))
    for (const s of streams) s.abort()
  }
  await eventually(() => trawl.api.hub.size === 0, { what: 'every aborted stream unsubscribes from the hub', intervalMs: 5 })
  t.equal(trawl.api.hub.size, 0, 'no subscription left after 300 aborted streams')
  const server = trawl.api.app.server
  const open = await new Promise<number>((resolve, reject) => server.getConnections((err, n) => (err ? reject(err) : resolve(n))))
  t.ok(open <= 1, `no connection left open (${open})`)
  gate.open()
  const done = (await trawl.api.app.inject(`/jobs/${job.id}?wait=10`)).json()
  t.equal(done.state, 'completed', 'the job itself went on')
})

t.test('an unknown job is a 404 problem, not an open stream', async (t) => {
  const trawl = await startTrawl(t, { worker: false })
  const base = await listen(t, trawl)
  const res = await fetch(`${base}/jobs/j_01JAAAAAAAAAAAAAAAAAAAAAAA/events`, { headers: { accept: 'text/event-stream' } })
  t.equal(res.status, 404)
  t.match(res.headers.get('content-type'), /application\/problem\+json/)
  t.equal((await res.json() as { code: string }).code, 'JOB_NOT_FOUND')
  const bad = await fetch(`${base}/jobs/j_01JAAAAAAAAAAAAAAAAAAAAAAA/events?after=yesterday`)
  t.equal(bad.status, 400)
})
