import { compareIds } from '../../src/events/hub.js'
import { check, checkEvent, checkHeadNotFound, contractTest, headerOf, type Answer } from '../helpers/contract/check.js'
import { answerOf, httpClient, json, LONG_ID, MISSING_ID, openStream, startContractService } from '../helpers/contract/service.js'
import type { Method } from '../helpers/contract/spec.js'
import { startGateServer } from '../helpers/gate-server.js'
import { within } from '../helpers/eventually.js'
import { asEvent, collect, type SseItem } from '../helpers/sse.js'

// GET /jobs/{id}/events against openapi.yaml: the answers, and every event of real streams
// held to the documented event schemas.

const { gate, base, inject } = await startContractService()

contractTest('events: 200 event stream: retry, history, live events, heartbeats, the end; resumable; 204 at the end', async (t) => {
  const slow = await startGateServer(100)
  t.teardown(slow.close)
  const job = json(check(t, await inject('POST', '/jobs', {
    payload: { urls: [slow.url('/fast/0'), slow.url('/hold/1')], options: { concurrency: 2, retries: 0 } }
  }), 'post', '/jobs'))
  await slow.untilWaiting(1)
  const url = `${base}/jobs/${job.id}/events`
  const http = httpClient(t)

  // The stream has no HEAD (it would hold the connection and send nothing): an unknown route,
  // answered at once.
  const head = await within(2000, http.fetch(url, { method: 'HEAD' }).then(answerOf))
  t.not(head, 'late', 'HEAD of an unfinished job\'s stream answers at once')
  if (head !== 'late') checkHeadNotFound(t, head, `HEAD ${url}`)

  const stream = await openStream(http, url)
  t.equal(stream.answer.statusCode, 200)
  check(t, stream.answer, 'get', '/jobs/{id}/events')
  const items: SseItem[] = []
  let opened = false
  for await (const item of stream.items()) {
    items.push(item)
    // Once the fast URL's result is in and the stream has idled for a heartbeat, let the held one go.
    const result0 = items.findIndex((i) => i.kind === 'event' && i.fields.event === 'result' && JSON.parse(i.fields.data ?? '{}').index === 0)
    if (!opened && result0 >= 0 && items.slice(result0).some((i) => i.kind === 'comment')) {
      opened = true
      slow.open()
    }
  }
  t.ok(opened, 'the stream idled with a heartbeat before the last URL was let go')
  t.same(items[0], { kind: 'retry', value: 2000 }, 'retry: 2000 comes first')
  const events = items.filter((i) => i.kind === 'event').map((i) => i.fields)
  t.ok(events.every((e) => Object.keys(e).sort().join() === 'data,event,id'), 'every event has id, event and data, and nothing else')
  const full = events.map(asEvent)
  const payloads = full.map((e) => checkEvent(t, e))
  t.equal(full[0]?.event, 'state', 'a fresh stream opens with a state event')
  t.equal(payloads[0]?.state, 'queued', 'the job as it was created: the history from its start, though the job was running')
  const ids = full.map((e) => e.id ?? '')
  t.ok(ids.every((id) => /^\d+-\d+$/.test(id) && id !== '0-0'), 'every event carries its Redis stream id')
  t.ok(ids.every((id, i) => i === 0 || compareIds(ids[i - 1] ?? '', id) < 0), 'ids increase along the stream')
  const history = full.map((e, i) => ({ event: e.event, data: payloads[i] ?? {} }))
  t.same(history.filter((e) => e.event === 'state').map((e) => e.data.state), ['queued', 'running', 'completed'], 'the whole history: queued, running, completed, never backwards')
  t.same(history.filter((e) => e.event === 'result').map((e) => [e.data.index, e.data.state]).sort(), [[0, 'succeeded'], [1, 'succeeded']], 'one result event per URL')
  t.equal(history[history.length - 1]?.event, 'state', 'the final state is the last event: then the stream ended')
  const lastResult = items.findIndex((i) => i.kind === 'event' && i.fields.event === 'result' && JSON.parse(i.fields.data ?? '{}').index === 1)
  t.ok(items.slice(0, lastResult).some((i) => i.kind === 'comment' && i.text === 'heartbeat'), 'a heartbeat comment went out while the stream was idle, and the last result came live after it')

  // Resuming: exactly the events after the one named, by header or query.
  for (const k of [0, 1, full.length - 2]) {
    const after = full[k]?.id ?? ''
    const viaHeader = await openStream(http, url, { 'last-event-id': after })
    check(t, viaHeader.answer, 'get', '/jobs/{id}/events')
    t.same(await collect(viaHeader), full.slice(k + 1), `Last-Event-ID ${after}: the events after it, none lost, none twice`)
    const viaQuery = await openStream(http, `${url}?after=${after}`)
    t.same(await collect(viaQuery), full.slice(k + 1), `?after=${after}: the same`)
  }
  const both = await openStream(http, `${url}?after=${full[1]?.id ?? ''}`, { 'last-event-id': full[2]?.id ?? '' })
  t.same(await collect(both), full.slice(3), 'Last-Event-ID wins over ?after=')

  // A finished job: the whole history, the end.
  const fresh = await collect(await openStream(http, url))
  t.same(fresh, full, 'a finished job: the whole history, then the end')
  for (const e of fresh) checkEvent(t, e)

  // Resuming after the final event (or any later id): nothing more to send, 204, no stream.
  for (const after of [full[full.length - 1]?.id ?? '', '99999999999999-0']) {
    const tail = await answerOf(await http.fetch(url, { headers: { 'last-event-id': after } }))
    t.equal(tail.statusCode, 204, `Last-Event-ID ${after} of a finished job: 204`)
    t.equal(headerOf(tail, 'content-type'), undefined, 'not an event stream')
    check(t, tail, 'get', '/jobs/{id}/events')
    const viaQuery = await answerOf(await http.fetch(`${url}?after=${after}`))
    t.equal(viaQuery.statusCode, 204, `?after=${after}: 204 too`)
  }

  checkHeadNotFound(t, await inject('HEAD', `/jobs/${job.id}/events`), 'HEAD of a finished job\'s stream')
})

contractTest('events: 400 for a malformed event id, 404 for an unknown job, the stream whatever Accept says, no HEAD', async (t) => {
  const job = json(check(t, await inject('POST', '/jobs', { payload: { urls: [gate.url('/fast/e')] } }), 'post', '/jobs'))
  const paths = (res: Answer, method: Method) => (check(t, res, method, '/jobs/{id}/events') as { errors?: Array<{ path: string }> } | undefined)?.errors?.map((e) => e.path)
  for (const [url, headers, path] of [
    [`/jobs/${job.id}/events?after=yesterday`, {}, '/querystring/after'],
    [`/jobs/${job.id}/events?after=1-2-3`, {}, '/querystring/after'],
    [`/jobs/${job.id}/events?after=${'1'.repeat(65)}`, {}, '/querystring/after'],
    [`/jobs/${job.id}/events`, { 'last-event-id': 'zz' }, '/headers/last-event-id'],
    [`/jobs/${job.id}/events?after=0-0`, { 'last-event-id': 'zz' }, '/headers/last-event-id']
  ] as const) {
    const res = await inject('GET', url, { headers })
    t.equal(res.statusCode, 400, `${url} ${JSON.stringify(headers)}`)
    t.same(paths(res, 'get'), [path], 'errors name the bad input')
  }
  for (const id of [MISSING_ID, 'not-an-id', LONG_ID]) {
    const res = await inject('GET', `/jobs/${id}/events`)
    t.equal(res.statusCode, 404, id)
    t.equal((check(t, res, 'get', '/jobs/{id}/events') as { code: string }).code, 'JOB_NOT_FOUND')
  }
  // HEAD is not served here, whatever the job: the route-not-found answer, without its body.
  for (const url of [`/jobs/${job.id}/events?after=yesterday`, `/jobs/${MISSING_ID}/events`, `/jobs/${job.id}/events`]) {
    checkHeadNotFound(t, await inject('HEAD', url), `HEAD ${url}`)
  }
  // The route has one representation: whatever the Accept, the stream (no 406). The job is
  // finished first, so each stream ends by itself.
  t.equal(json(check(t, await inject('GET', `/jobs/${job.id}?wait=10&results=none`), 'get', '/jobs/{id}')).state, 'completed')
  for (const accept of ['application/json', 'text/html', 'application/problem+json', 'image/png;q=1, */*;q=0']) {
    const res = await inject('GET', `/jobs/${job.id}/events`, { headers: { accept } })
    t.equal(res.statusCode, 200, `Accept: ${accept}`)
    t.match(res.headers['content-type'], /^text\/event-stream/, `Accept: ${accept}: the stream`)
    check(t, res, 'get', '/jobs/{id}/events')
    t.match(res.body, /^retry: 2000$/m, 'it opens with retry')
    t.match(res.body, /^data: \{.*"state":"completed"/m, 'and carries the final state')
  }
})
