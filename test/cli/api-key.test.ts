import t from 'tap'
import { startSeedSite } from '../helpers/seed.js'
import { expectExit, runCli, startService } from './helpers.js'

// A server with API_KEYS: the client sends --api-key (or TRAWL_API_KEY) as a bearer token.

const KEY = 'cli-test-key-0123456789'

t.test('get and status with and without a key', async (t) => {
  const site = await startSeedSite()
  t.teardown(site.close)
  const { base } = await startService(t, { env: { API_KEYS: `cli:${KEY}` } })

  const refused = await runCli(t, ['get', '-s', base, site.urls[0] as string])
  t.equal(refused.code, 3, 'no key: the server answers a problem')
  t.match(refused.stderr, /UNAUTHORIZED/)

  const run = await runCli(t, ['get', '-s', base, '--api-key', KEY, ...site.urls.slice(0, 3)])
  expectExit(t, run, 0)
  t.match(run.stdout, /Downloaded 3 URLs in [\d.]+ s: 3 succeeded, 0 failed/)
  const id = /job (j_[0-9A-Z]{26})/.exec(run.stderr)?.[1]
  t.ok(id, 'the job id is on stderr')

  const status = await runCli(t, ['status', '-s', base, String(id)], { env: { TRAWL_API_KEY: KEY } })
  expectExit(t, status, 0)
  t.match(status.stdout, /is completed: 3\/3 done/)
})
