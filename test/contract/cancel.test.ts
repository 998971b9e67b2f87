import { check, contractTest } from '../helpers/contract/check.js'
import { json, startContractService } from '../helpers/contract/service.js'

// DELETE /jobs/{id} against openapi.yaml: every answer, for real.

const { site, gate, inject } = await startContractService()

contractTest('cancel: a running job: wait runs out, then DELETE cancels it, twice', async (t) => {
  const urls = [gate.url('/hold/0'), gate.url('/hold/1'), gate.url('/hold/2')]
  const job = json(check(t, await inject('POST', '/jobs', { payload: { urls, options: { concurrency: 2, retries: 0 } } }), 'post', '/jobs'))
  await gate.untilWaiting(2)
  const running = json(check(t, await inject('GET', `/jobs/${job.id}?wait=0.3`), 'get', '/jobs/{id}'))
  t.equal(running.state, 'running', 'wait ran out: 200 with the job unfinished')
  t.same(running.results?.map((r) => r.state), ['running', 'running', 'pending'])
  t.same(running.finishedAt, null)
  const notYet = await inject('GET', `/jobs/${job.id}/results/0/content`)
  t.equal((check(t, notYet, 'get', '/jobs/{id}/results/{index}/content') as { code: string }).code, 'CONTENT_NOT_FOUND')

  const cancel = await inject('DELETE', `/jobs/${job.id}`)
  t.equal(cancel.statusCode, 200)
  const cancelled = json(check(t, cancel, 'delete', '/jobs/{id}'))
  t.equal(cancelled.state, 'cancelled')
  t.same(cancelled.results?.map((r) => r.error?.code), ['CANCELLED', 'CANCELLED', 'CANCELLED'])
  const twice = await inject('DELETE', `/jobs/${job.id}`)
  t.equal(twice.statusCode, 200, 'cancelling a cancelled job again answers 200')
  check(t, twice, 'delete', '/jobs/{id}')
})

contractTest('cancel: 409 JOB_FINISHED for a job that has finished', async (t) => {
  const job = json(check(t, await inject('POST', '/jobs', { payload: { urls: [site.urls[0]] } }), 'post', '/jobs'))
  t.equal(json(check(t, await inject('GET', `/jobs/${job.id}?wait=30&results=none`), 'get', '/jobs/{id}')).state, 'completed')
  const again = await inject('DELETE', `/jobs/${job.id}`)
  t.equal(again.statusCode, 409)
  t.equal((check(t, again, 'delete', '/jobs/{id}') as { code: string }).code, 'JOB_FINISHED')
})
