import t from 'tap'
import { startSeedSite, SEED_PAGES } from '../helpers/seed.js'
import { expectExit, lines, runCli, startService } from './helpers.js'

// `trawl get` as a child process against a real API and worker, on the seed's fifteen pages.

const READ = /^Read (\d+) from (\S+) \((\d{3}), (\d+) ms\)$/
const SUMMARY = /^Downloaded (\d+) URLs in \d+\.\d\d s: (\d+) succeeded, (\d+) failed(?:, (\d+) cancelled)?$/

t.test('the seed: a Read line per URL with its size, then the summary; exit 0', async (t) => {
  const site = await startSeedSite()
  t.teardown(site.close)
  const { base } = await startService(t)
  const run = await runCli(t, ['get', '--server', base, '--concurrency', '5', ...site.urls])
  expectExit(t, run, 0)
  const out = lines(run.stdout)
  t.equal(out.length, 16, 'fifteen URL lines and the summary')
  const read = out.slice(0, 15).map((line) => READ.exec(line))
  t.ok(read.every((m) => m !== null), 'every line before the summary is a Read line')
  t.same(read.map((m) => m?.[2]).sort(), [...site.urls].sort(), 'each URL once')
  for (const m of read) {
    const index = site.urls.indexOf(m?.[2] ?? '')
    t.equal(Number(m?.[1]), site.bodies[index]?.length, `${SEED_PAGES[index]}: decoded bytes`)
    t.equal(m?.[3], '200')
  }
  t.match(out[15], SUMMARY)
  t.match(out[15], /^Downloaded 15 URLs in \d+\.\d\d s: 15 succeeded, 0 failed$/, 'no cancelled count when there are none')
  t.match(run.stderr, /^trawl: job j_[0-9A-Z]{26} \(15 URLs\) on http:\/\/127\.0\.0\.1:\d+\n$/, 'stderr only names the job')
})

t.test('a URL that fails: a Failed line with its code, the rest read, exit 1', async (t) => {
  const site = await startSeedSite()
  t.teardown(site.close)
  const { base } = await startService(t)
  const missing = site.urls[0]?.replace(/wiki\/.*$/, 'wiki/No_such_page') as string
  const run = await runCli(t, ['get', '-s', base, '--retries', '0', site.urls[0] as string, missing, site.urls[1] as string])
  t.equal(run.code, 1)
  const out = lines(run.stdout)
  const failed = out.filter((l) => l.startsWith('Failed '))
  t.equal(failed.length, 1)
  t.ok(failed[0]?.startsWith(`Failed ${missing}: HTTP_STATUS `), failed[0] ?? 'no Failed line')
  t.match(failed[0], /404/, 'the message names the status')
  t.equal(out.filter((l) => READ.test(l)).length, 2)
  t.match(out.at(-1), /^Downloaded 3 URLs in \S+ s: 2 succeeded, 1 failed$/)
})

t.test('TRAWL_SERVER is the default server', async (t) => {
  const site = await startSeedSite()
  t.teardown(site.close)
  const { base } = await startService(t)
  const run = await runCli(t, ['get', site.urls[0] as string], { env: { TRAWL_SERVER: base } })
  expectExit(t, run, 0)
  t.match(run.stdout, /^Read 56000 from /)
})
