import t from 'tap'
import { startGateServer } from '../helpers/gate-server.js'
import { startTrawl } from '../helpers/trawl.js'

t.test('DELETE cancels a running job: pending URLs end cancelled, fetches in flight are aborted, finished results stay', async (t) => {
  const gate = await startGateServer()
  t.teardown(gate.close)
  const { api } = await startTrawl(t)
  const urls = [gate.url('/fast/0'), gate.url('/fast/1'), ...Array.from({ length: 18 }, (_, i) => gate.url(`/hold/${i}`))]
  const job = (await api.app.inject({ method: 'POST', url: '/jobs', payload: { urls, options: { concurrency: 4, retries: 0 } } })).json()

  // Lanes take indexes in order, so with four /hold/ requests waiting both /fast/ ones are done.
  await gate.untilWaiting(4)
  const running = (await api.app.inject(`/jobs/${job.id}`)).json()
  t.equal(running.state, 'running')
  t.same(running.counts, { pending: 14, running: 4, succeeded: 2, failed: 0, cancelled: 0 })
  t.same(running.results.slice(0, 6).map((r: { state: string }) => r.state), ['succeeded', 'succeeded', 'running', 'running', 'running', 'running'])

  const started = Date.now()
  const res = await api.app.inject({ method: 'DELETE', url: `/jobs/${job.id}` })
  t.equal(res.statusCode, 200)
  const cancelled = res.json()
  t.equal(cancelled.state, 'cancelled')
  t.same(cancelled.counts, { pending: 0, running: 0, succeeded: 2, failed: 0, cancelled: 18 })
  t.ok(cancelled.finishedAt)
  t.same(cancelled.results.map((r: { state: string }) => r.state), ['succeeded', 'succeeded', ...Array(18).fill('cancelled')])
  t.equal(cancelled.results[5].error.code, 'CANCELLED')
  t.ok(cancelled.results[0].contentUrl, 'a finished result keeps its content')

  await gate.untilAborted(4)
  t.ok(Date.now() - started < 1500, `the four fetches in flight were aborted within a second (${Date.now() - started} ms)`)
  t.equal(gate.waiting, 0)

  const twice = await api.app.inject({ method: 'DELETE', url: `/jobs/${job.id}` })
  t.equal(twice.statusCode, 200, 'cancelling a cancelled job again answers 200')
  t.equal(twice.json().state, 'cancelled')
  const content = await api.app.inject(cancelled.results[0].contentUrl)
  t.equal(content.statusCode, 200)
  const noContent = await api.app.inject(`/jobs/${job.id}/results/5/content`)
  t.equal(noContent.statusCode, 404)
  t.equal(noContent.json().code, 'CONTENT_NOT_FOUND')
})

t.test('a queued job with no worker can be cancelled, and wait returns at once for it', async (t) => {
  const { api } = await startTrawl(t, { worker: false })
  const job = (await api.app.inject({ method: 'POST', url: '/jobs', payload: { urls: ['http://127.0.0.1:9/a', 'http://127.0.0.1:9/b'] } })).json()
  t.equal(job.state, 'queued')
  t.same(job.counts, { pending: 2, running: 0, succeeded: 0, failed: 0, cancelled: 0 })
  const waiting = api.app.inject(`/jobs/${job.id}?wait=20&results=none`)
  const cancelled = (await api.app.inject({ method: 'DELETE', url: `/jobs/${job.id}` })).json()
  t.equal(cancelled.state, 'cancelled')
  t.equal(cancelled.startedAt, null)
  const waited = (await waiting).json()
  t.equal(waited.state, 'cancelled', 'a waiting GET wakes up when the job ends')
})
