/**
 * Which contract test produces which documented answers (`METHOD /path status`, and
 * `WEBHOOK POST jobFinished ...` for the callback). Each test, run alone, fails unless it
 * produced and checked every answer listed for it; spec.test.ts fails unless the lists together
 * name every answer openapi.yaml documents (`default` 500s aside). So coverage of the document
 * does not depend on which tests ran before which.
 */
export const PRODUCERS = {
  'callback: signed, redirect not followed, retried with the same id and body, then delivered': [
    'GET /jobs/{id} 200', 'POST /jobs 202', 'WEBHOOK POST jobFinished 2XX',
    'WEBHOOK POST jobFinished default'
  ],
  'cancel: a running job: wait runs out, then DELETE cancels it, twice': [
    'DELETE /jobs/{id} 200', 'GET /jobs/{id} 200', 'GET /jobs/{id}/results/{index}/content 404',
    'POST /jobs 202'
  ],
  'cancel: 409 JOB_FINISHED for a job that has finished': ['DELETE /jobs/{id} 409', 'GET /jobs/{id} 200', 'POST /jobs 202'],
  'content: 200 with the decoded body byte for byte and its Content-Type; HEAD': [
    'GET /jobs/{id} 200', 'GET /jobs/{id}/results/{index}/content 200',
    'HEAD /jobs/{id}/results/{index}/content 200', 'POST /jobs 202'
  ],
  'content: 404 CONTENT_NOT_FOUND for a failed URL and for an index past the end': [
    'GET /jobs/{id} 200', 'GET /jobs/{id}/results/{index}/content 404',
    'HEAD /jobs/{id}/results/{index}/content 404', 'POST /jobs 202'
  ],
  'content: keepContent false stores no body': ['GET /jobs/{id} 200', 'GET /jobs/{id}/results/{index}/content 404', 'POST /jobs 202'],
  'content: ETag is the sha256 of the body; 304 for If-None-Match; Content-Length': [
    'GET /jobs/{id} 200', 'GET /jobs/{id}/results/{index}/content 200', 'GET /jobs/{id}/results/{index}/content 304',
    'HEAD /jobs/{id}/results/{index}/content 304', 'POST /jobs 202'
  ],
  'bulk: every result as NDJSON and every stored body as a ZIP; HEAD; 404 for an unknown job': [
    'GET /jobs/{id} 200', 'GET /jobs/{id}/archive 200', 'GET /jobs/{id}/archive 404', 'GET /jobs/{id}/results 200',
    'GET /jobs/{id}/results 404', 'HEAD /jobs/{id}/archive 200', 'HEAD /jobs/{id}/archive 404',
    'HEAD /jobs/{id}/results 200', 'HEAD /jobs/{id}/results 404', 'POST /jobs 202'
  ],
  'purge: 204, then the job is 404 everywhere; 400 for a purge that is neither true nor false': [
    'DELETE /jobs/{id} 204', 'DELETE /jobs/{id} 400', 'DELETE /jobs/{id} 404', 'GET /jobs/{id} 200', 'GET /jobs/{id} 404',
    'GET /jobs/{id}/archive 404', 'GET /jobs/{id}/results 404', 'GET /jobs/{id}/results/{index}/content 404', 'POST /jobs 202'
  ],
  'content: 400 for an index that is not a non-negative integer': [
    'GET /jobs/{id}/results/{index}/content 400', 'HEAD /jobs/{id}/results/{index}/content 400'
  ],
  'events: 200 event stream: retry, history, live events, heartbeats, the end; resumable; 204 at the end': ['GET /jobs/{id}/events 200', 'GET /jobs/{id}/events 204', 'POST /jobs 202'],
  'events: 400 for a malformed event id, 404 for an unknown job, the stream whatever Accept says, no HEAD': [
    'GET /jobs/{id} 200', 'GET /jobs/{id}/events 200', 'GET /jobs/{id}/events 400',
    'GET /jobs/{id}/events 404', 'POST /jobs 202'
  ],
  'problems: 404 for unknown jobs (any id that is not a job) and for paths no route serves': [
    'DELETE /jobs/{id} 404', 'GET /jobs/{id} 404', 'GET /jobs/{id}/results/{index}/content 404',
    'HEAD /jobs/{id} 404', 'HEAD /jobs/{id}/results/{index}/content 404'
  ],
  'problems: with API keys, 401 without a valid key on every route but the probes; another tenant\'s job is 404': [
    'DELETE /jobs/{id} 401', 'DELETE /jobs/{id} 404', 'GET /healthz 200', 'GET /jobs/{id} 200',
    'GET /jobs/{id} 401', 'GET /jobs/{id} 404', 'GET /jobs/{id}/archive 401', 'GET /jobs/{id}/archive 404',
    'GET /jobs/{id}/events 401', 'GET /jobs/{id}/events 404', 'GET /jobs/{id}/results 401', 'GET /jobs/{id}/results 404',
    'HEAD /jobs/{id}/archive 401', 'HEAD /jobs/{id}/results 401',
    'GET /jobs/{id}/results/{index}/content 401', 'GET /jobs/{id}/results/{index}/content 404',
    'GET /jobs 401', 'GET /metrics 200', 'GET /readyz 200', 'HEAD /healthz 200', 'HEAD /jobs 401', 'HEAD /jobs/{id} 401', 'HEAD /jobs/{id} 404',
    'HEAD /jobs/{id}/results/{index}/content 401', 'HEAD /jobs/{id}/results/{index}/content 404',
    'HEAD /metrics 200', 'HEAD /readyz 200', 'POST /jobs 202', 'POST /jobs 401'
  ],
  'metrics: 200 in the Prometheus text format, HEAD; 401 without an operator key, a tenant\'s key refused': [
    'GET /metrics 200', 'GET /metrics 401', 'HEAD /metrics 200', 'HEAD /metrics 401', 'POST /jobs 202'
  ],
  'problems: 503 with Retry-After while the process is overloaded, on every route but /healthz': [
    'DELETE /jobs/{id} 503', 'GET / 503', 'GET /docs 503', 'GET /healthz 200', 'GET /jobs 503', 'HEAD /jobs 503', 'GET /jobs/{id} 503', 'GET /jobs/{id}/archive 503',
    'GET /jobs/{id}/events 503', 'GET /jobs/{id}/results 503', 'GET /jobs/{id}/results/{index}/content 503', 'GET /metrics 503', 'HEAD /metrics 503',
    'GET /readyz 503', 'HEAD /healthz 200', 'HEAD /jobs/{id} 503', 'HEAD /jobs/{id}/archive 503',
    'HEAD /jobs/{id}/results 503', 'HEAD /jobs/{id}/results/{index}/content 503', 'HEAD /readyz 503',
    'POST /jobs 503'
  ],
  'problems: 503 with Retry-After while Redis does not answer': [
    'DELETE /jobs/{id} 503', 'GET /healthz 200', 'GET /jobs 503', 'HEAD /jobs 503', 'GET /jobs/{id} 503', 'GET /jobs/{id}/events 503',
    'GET /jobs/{id}/results/{index}/content 503', 'GET /readyz 503', 'HEAD /jobs/{id} 503',
    'HEAD /jobs/{id}/results/{index}/content 503', 'HEAD /readyz 503', 'POST /jobs 202', 'POST /jobs 503'
  ],
  'list: 200, newest first, filtered and paged by cursor; HEAD': ['GET /jobs 200', 'HEAD /jobs 200', 'POST /jobs 202'],
  'list: 400 for a bad cursor, limit or state, named as a JSON pointer': ['GET /jobs 400', 'HEAD /jobs 400'],
  'pages: the dashboard and the API reference are HTML and need no key': ['GET / 200', 'GET /docs 200'],
  'read: 200 after wait, with every kind of result in input order': ['GET /jobs/{id} 200', 'HEAD /jobs/{id} 200', 'POST /jobs 202'],
  'read: results=none leaves results out; pages of results link to the next': ['GET /jobs/{id} 200', 'POST /jobs 202'],
  'read: 400 for each bad query parameter, named as a JSON pointer': ['GET /jobs/{id} 400', 'HEAD /jobs/{id} 400'],
  'probes: 200 from healthz and readyz': ['GET /healthz 200', 'GET /readyz 200', 'HEAD /healthz 200', 'HEAD /readyz 200'],
  'read: at shutdown a request in progress is answered as usual, a wait at once': ['GET /jobs/{id} 200'],
  'submit: 202, queued, with Location and a pending result per URL': ['POST /jobs 202'],
  'submit: Idempotency-Key: 200 replay, 422 another request, 409 in progress, 400 malformed': [
    'POST /jobs 200', 'POST /jobs 202', 'POST /jobs 400', 'POST /jobs 409', 'POST /jobs 422'
  ],
  'submit: 400 lists each bad field as a JSON pointer, and the documented request schema refuses it too': ['POST /jobs 400'],
  'submit: 415 for a body that is not JSON, 413 for one that is too large': ['POST /jobs 413', 'POST /jobs 415'],
  'submit: 429 from the per-tenant rate limit and the pending-URL cap': ['POST /jobs 202', 'POST /jobs 429']
} as const satisfies Record<string, readonly string[]>

export type Producer = keyof typeof PRODUCERS
