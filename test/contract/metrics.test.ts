import { check, contractTest, headerOf, type Answer } from '../helpers/contract/check.js'
import { json } from '../helpers/contract/service.js'
import { startTrawl } from '../helpers/trawl.js'
import { promtoolCheck } from '../metrics/tools.js'

// GET /metrics on the API against openapi.yaml: the text format, open without ADMIN_API_KEYS,
// behind operators' keys (and never tenants') with it.

const OPERATOR = 'operator-key-0123456789abcdef'
const TENANT = 'tenant-key-0123456789abcdef'

contractTest('metrics: 200 in the Prometheus text format, HEAD; 401 without an operator key, a tenant\'s key refused', async (t) => {
  const { api } = await startTrawl(t, { env: { API_KEYS: `alpha:${TENANT}`, ADMIN_API_KEYS: OPERATOR } })
  const inject = (method: string, url: string, headers: Record<string, string> = {}, payload?: object) =>
    api.app.inject({ method: method as 'GET', url, headers, payload }) as Promise<Answer>
  const job = json(check(t, await inject('POST', '/jobs', { authorization: `Bearer ${TENANT}` }, { urls: ['http://a.test/'] }), 'post', '/jobs'))
  t.ok(job.id, 'a job was submitted, so the counters have something to show')

  const ok = await inject('GET', '/metrics', { authorization: `Bearer ${OPERATOR}` })
  t.equal(ok.statusCode, 200)
  check(t, ok, 'get', '/metrics')
  t.match(headerOf(ok, 'content-type'), /^text\/plain; version=0\.0\.4/)
  t.match(ok.body, /^trawl_job_transitions_total\{state="queued",role="api"\} 1$/m, 'the submission is counted')
  t.match(ok.body, /^trawl_queue_jobs\{queue="fetch",state="(waiting|wait)",role="api"\} \d+$/m, 'queue depth is read on scrape')
  const lint = await promtoolCheck(ok.body)
  t.equal(lint.code, 0, `promtool check metrics passes: ${lint.output}`)
  const head = await inject('HEAD', '/metrics', { authorization: `Bearer ${OPERATOR}` })
  t.equal(head.statusCode, 200)
  check(t, head, 'head', '/metrics')

  const refused: Array<Record<string, string>> = [{}, { authorization: `Bearer ${TENANT}` }, { authorization: 'Bearer not-a-key-0123456789' }, { authorization: `Basic ${OPERATOR}` }]
  for (const headers of refused) {
    const res = await inject('GET', '/metrics', headers)
    t.equal(res.statusCode, 401, `GET /metrics ${JSON.stringify(headers)}`)
    t.equal((check(t, res, 'get', '/metrics') as { code: string } | undefined)?.code, 'UNAUTHORIZED')
    const h = await inject('HEAD', '/metrics', headers)
    t.equal(h.statusCode, 401)
    check(t, h, 'head', '/metrics')
  }
})
