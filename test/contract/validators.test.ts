import t, { type Test } from 'tap'
import type { JobDocument } from '../../src/jobs/schemas.js'
import { check } from '../helpers/contract/check.js'
import { CALLBACK_SECRET, injector, json } from '../helpers/contract/service.js'
import { eventVariants, validatorAt } from '../helpers/contract/spec.js'
import { startGateServer } from '../helpers/gate-server.js'
import { startReceiver } from '../helpers/receiver.js'
import { eventsOfText, type SseEvent } from '../helpers/sse.js'
import { startTrawl } from '../helpers/trawl.js'

// The validators the contract tests use can fail: real answers pass, and the same answers
// changed in one place each are refused.

/** Real answers to change: a job document, a problem, a state and a result event, a callback body. */
async function samples (t: Test) {
  const gate = await startGateServer(100)
  t.teardown(gate.close)
  const receiver = await startReceiver(CALLBACK_SECRET, () => 204)
  t.teardown(receiver.close)
  const { api } = await startTrawl(t, { env: { CALLBACK_SECRET } })
  const inject = injector(api.app)
  // Two pages, a closed port and another page: results[2] carries an error, results[0] none.
  const payload = { urls: [gate.url('/fast/0'), gate.url('/fast/1'), 'http://127.0.0.1:9/closed', gate.url('/fast/3')], options: { retries: 0 }, callbackUrl: receiver.url() }
  const job = json(check(t, await inject('POST', '/jobs', { payload }), 'post', '/jobs'))
  const doc: JobDocument = json(check(t, await inject('GET', `/jobs/${job.id}?wait=30`), 'get', '/jobs/{id}'))
  t.ok(doc.results?.[2]?.error, 'the third URL failed')
  const problem = check(t, await inject('POST', '/jobs', { payload: { urls: [] } }), 'post', '/jobs') as Record<string, unknown>
  const stream = await inject('GET', `/jobs/${job.id}/events`)
  check(t, stream, 'get', '/jobs/{id}/events')
  const events: SseEvent[] = await eventsOfText(stream.body)
  await receiver.untilReceived(1)
  return {
    doc,
    problem,
    stateEvent: events[events.length - 1] as SseEvent,
    resultEvent: events.find((e) => e.event === 'result') as SseEvent,
    callbackBody: JSON.parse(receiver.received[0]?.body ?? '{}') as Record<string, unknown>
  }
}

t.test('the validators can fail: wrong bodies and events are refused', async (t) => {
  const { doc, problem, stateEvent, resultEvent, callbackBody } = await samples(t)
  const validDoc = validatorAt('#/paths/~1jobs~1{id}/get/responses/200/content/application~1json/schema')
  t.ok(validDoc(doc), 'the real document passes', { errors: validDoc.errors })
  const docMutations: Array<[string, (d: Record<string, unknown>) => void]> = [
    ['an undocumented member', (d) => { d.extra = 1 }],
    ['an undocumented member in a result', (d) => { (d.results as Array<Record<string, unknown>>)[0]!.extra = 1 }],
    ['an undocumented member in counts', (d) => { (d.counts as Record<string, unknown>).queued = 0 }],
    ['an unknown job state', (d) => { d.state = 'done' }],
    ['a missing member', (d) => { delete d.counts }],
    ['a result without its error member', (d) => { delete (d.results as Array<Record<string, unknown>>)[0]!.error }],
    ['an unknown error code', (d) => { (d.results as Array<Record<string, unknown>>)[2]!.error = { code: 'BOGUS', message: 'x' } }],
    ['a date that is not a date-time', (d) => { d.createdAt = 'yesterday' }],
    ['an option of the wrong type', (d) => { (d.options as Record<string, unknown>).concurrency = '5' }],
    ['a null total', (d) => { d.total = null }],
    ['a malformed id', (d) => { d.id = 'job-1' }],
    ['a page without next', (d) => { delete (d.page as Record<string, unknown>).next }]
  ]
  for (const [name, mutate] of docMutations) {
    const copy = structuredClone(doc) as unknown as Record<string, unknown>
    mutate(copy)
    t.notOk(validDoc(copy), `a document with ${name} is refused`)
  }

  const validProblem = validatorAt('#/components/responses/BadRequest/content/application~1problem+json/schema')
  t.ok(validProblem(problem), 'the real problem passes', { errors: validProblem.errors })
  const problemMutations: Array<[string, (p: Record<string, unknown>) => void]> = [
    ['another code', (p) => { p.code = 'JOB_NOT_FOUND' }],
    ['an unknown code', (p) => { p.code = 'NOPE' }],
    ['another status', (p) => { p.status = 404 }],
    ['no detail', (p) => { delete p.detail }],
    ['an undocumented member', (p) => { p.stack = 'Error: at ...' }],
    ['a type that is not a trawl problem URI', (p) => { p.type = 'about:blank' }],
    ['an error entry without a message', (p) => { p.errors = [{ path: '/urls' }] }]
  ]
  for (const [name, mutate] of problemMutations) {
    const copy = structuredClone(problem)
    mutate(copy)
    t.notOk(validProblem(copy), `a problem with ${name} is refused`)
  }

  // Events: the fields of the event, and the JSON of its data.
  const validEvent = validatorAt('#/components/schemas/JobEvent')
  const stateData = validatorAt(eventVariants.get('state') ?? '')
  const resultData = validatorAt(eventVariants.get('result') ?? '')
  t.ok(validEvent(stateEvent) && validEvent(resultEvent), 'the real events pass')
  t.ok(stateData(JSON.parse(stateEvent.data)) && resultData(JSON.parse(resultEvent.data)), 'and their data')
  const eventMutations: Array<[string, SseEvent]> = [
    ['an unknown event name', { ...stateEvent, event: 'progress' }],
    ['no id', { event: 'state', data: stateEvent.data }],
    ['an id that is not a stream id', { ...stateEvent, id: 'abc' }],
    ['a result with the snapshot id', { ...resultEvent, id: '0-0' }],
    ['an extra field', { ...resultEvent, retry: '10' } as SseEvent]
  ]
  for (const [name, event] of eventMutations) t.notOk(validEvent(event), `an event with ${name} is refused`)
  const stateJson = JSON.parse(stateEvent.data) as Record<string, unknown>
  t.notOk(stateData({ ...stateJson, results: [] }), 'state data with results is refused: it is the document without them')
  t.notOk(stateData({ ...stateJson, page: { offset: 0, limit: 100, next: null } }), 'state data with page is refused')
  t.notOk(resultData({ ...JSON.parse(resultEvent.data), contentUrl: undefined }), 'a result without contentUrl is refused')

  const validCallback = validatorAt('#/webhooks/jobFinished/post/requestBody/content/application~1json/schema')
  t.ok(validCallback(callbackBody), 'the real callback body passes')
  const callbackMutations: Array<[string, Record<string, unknown>]> = [
    ['results', { ...callbackBody, results: [] }],
    ['a state that is not final', { ...callbackBody, state: 'running' }],
    ['no finishedAt', { ...callbackBody, finishedAt: null }],
    ['no callback block', { ...callbackBody, callback: null }]
  ]
  for (const [name, body] of callbackMutations) t.notOk(validCallback(body), `a callback body with ${name} is refused`)
})
