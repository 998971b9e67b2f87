import { createHmac } from 'node:crypto'
import { check, contractTest, produced } from '../helpers/contract/check.js'
import { CALLBACK_SECRET, json, startContractService } from '../helpers/contract/service.js'
import { deref, headerMatches, openValidatorAt, spec, validatorAt } from '../helpers/contract/spec.js'
import { eventually } from '../helpers/eventually.js'
import { startReceiver } from '../helpers/receiver.js'

// The callback (`webhooks.jobFinished`) against openapi.yaml, sent for real to a live receiver.

const { gate, inject } = await startContractService()
const validSubmission = openValidatorAt('#/components/schemas/JobSubmission')

contractTest('callback: signed, redirect not followed, retried with the same id and body, then delivered', async (t) => {
  // The first attempt is redirected (a failed attempt; the redirect is not followed), the second gets 204.
  const receiver = await startReceiver(CALLBACK_SECRET, (n) => (n === 1 ? { status: 307, location: '/elsewhere' } : 204))
  t.teardown(receiver.close)
  const payload = { urls: [gate.url('/fast/a')], callbackUrl: receiver.url('/hook') }
  t.ok(validSubmission(payload), 'the payload matches JobSubmission', { errors: validSubmission.errors })
  const job = json(check(t, await inject('POST', '/jobs', { payload }), 'post', '/jobs'))
  t.same(job.callback, { url: payload.callbackUrl, state: 'pending', attempts: 0, lastStatus: null, lastError: null })
  await receiver.untilReceived(2)
  // The delivery is recorded just after the receiver answers, with nothing to announce it.
  await eventually(async () => (await inject('GET', `/jobs/${job.id}?results=none`)).body.includes('"state":"delivered"'), { what: 'the callback is recorded as delivered' })
  const settled = json(check(t, await inject('GET', `/jobs/${job.id}?results=none`), 'get', '/jobs/{id}'))
  t.same(settled?.callback, { url: payload.callbackUrl, state: 'delivered', attempts: 2, lastStatus: 204, lastError: null }, 'the callback block')
  t.equal(settled?.state, 'completed', 'the callback never changes the job state')
  t.same(receiver.received.map((r) => r.path), ['/hook', '/hook'], 'the redirect target was never called')

  const webhook = spec.webhooks.jobFinished?.post
  const bodySchema = '#/webhooks/jobFinished/post/requestBody/content/application~1json/schema'
  for (const [n, r] of receiver.received.entries()) {
    const label = `WEBHOOK POST jobFinished, attempt ${n + 1}`
    t.equal(r.headers['content-type'], 'application/json', `${label}: JSON`)
    for (const raw of webhook?.parameters ?? []) {
      const p = deref(raw)
      const value = r.headers[p.name.toLowerCase()]
      if (p.required) t.ok(value !== undefined, `${label}: header ${p.name} is present`)
      const { ok, errors } = headerMatches(p.schema, String(value))
      t.ok(ok, `${label}: header ${p.name} (${String(value)}) matches its schema`, { errors })
    }
    const id = String(r.headers['webhook-id'])
    const timestamp = String(r.headers['webhook-timestamp'])
    // The signature as the document describes it, computed here rather than with src/callbacks/sign.ts.
    const expected = `v1,${createHmac('sha256', CALLBACK_SECRET).update(`${id}.${timestamp}.${r.body}`).digest('base64')}`
    t.equal(r.headers['webhook-signature'], expected, `${label}: the signature is as documented`)
    t.ok(Math.abs(Date.now() / 1000 - Number(timestamp)) < 300, `${label}: the timestamp is now, in seconds`)
    t.equal(id, job.id, `${label}: webhook-id is the job id`)
    const body = JSON.parse(r.body) as Record<string, unknown>
    const validate = validatorAt(bodySchema)
    t.ok(validate(body), `${label}: the body matches CallbackBody`, { errors: validate.errors, body })
    t.same(body.callback, { url: payload.callbackUrl, state: 'pending', attempts: 0, lastStatus: null, lastError: null }, `${label}: the body shows the delivery as it stood before the first attempt`)
  }
  t.equal(receiver.received[0]?.body, receiver.received[1]?.body, 'every retry sends the same bytes')
  t.equal(receiver.received[0]?.headers['webhook-id'], receiver.received[1]?.headers['webhook-id'], 'and the same webhook-id')
  // The receiver's answers: a 307 (documented as `default`, retried) and a 204 (2XX, delivered).
  t.ok(webhook?.responses.default && webhook.responses['2XX'], 'the webhook documents 2XX and default')
  produced(t, 'WEBHOOK POST jobFinished default')
  produced(t, 'WEBHOOK POST jobFinished 2XX')
})
