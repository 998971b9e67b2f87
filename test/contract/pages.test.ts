import { check, contractTest } from '../helpers/contract/check.js'
import { injector } from '../helpers/contract/service.js'
import { startTrawl } from '../helpers/trawl.js'

// GET / and GET /docs, the pages for people, against openapi.yaml. test/dashboard/ drives them
// in a real browser; here they are answers like any other.

contractTest('pages: the dashboard and the API reference are HTML and need no key', async (t) => {
  const { api } = await startTrawl(t, { worker: false, env: { API_KEYS: 'people:pages-contract-key-0123456789' } })
  const inject = injector(api.app)
  for (const path of ['/', '/docs'] as const) {
    const res = await inject('GET', path)
    t.equal(res.statusCode, 200, `${path} without a key`)
    check(t, res, 'get', path)
    t.match(res.body, /<!doctype html>\s*<html/i, `${path} is an HTML page`)
  }
})
