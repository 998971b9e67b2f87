import { mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import t from 'tap'
import { startSeedSite, SEED_PAGES } from '../helpers/seed.js'
import { lines, runCli, startService } from './helpers.js'

// `trawl get` as a child process against a real API and worker, on the seed's fifteen pages.

const READ = /^Read (\d+) from (\S+) \((\d{3}), (\d+) ms\)$/
const SUMMARY = /^Downloaded (\d+) URLs in \d+\.\d\d s: (\d+) succeeded, (\d+) failed(?:, (\d+) cancelled)?$/

t.test('the seed: a Read line per URL with its size, then the summary; exit 0', async (t) => {
  const site = await startSeedSite()
  t.teardown(site.close)
  const { base } = await startService(t)
  const run = await runCli(t, ['get', '--server', base, '--concurrency', '5', ...site.urls])
  t.equal(run.code, 0, run.stderr)
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
  t.ok(out.includes(`Failed ${missing}: HTTP_STATUS ${failedMessage(out, missing)}`.trimEnd()))
  t.match(out.find((l) => l.startsWith('Failed')), /^Failed \S+\/wiki\/No_such_page: HTTP_STATUS .*404/)
  t.equal(out.filter((l) => READ.test(l)).length, 2)
  t.equal(out.at(-1), out.at(-1)?.match(SUMMARY)?.[0])
  t.match(out.at(-1), /^Downloaded 3 URLs in \S+ s: 2 succeeded, 1 failed$/)
})

t.test('-o DIR saves each body under a safe name; the bytes are the ones served', async (t) => {
  const site = await startSeedSite()
  t.teardown(site.close)
  const { base } = await startService(t)
  const dir = await mkdtemp(join(tmpdir(), 'trawl-cli-'))
  t.teardown(() => rm(dir, { recursive: true, force: true }))
  const out = join(dir, 'pages')
  const run = await runCli(t, ['get', '-s', base, '-o', out, ...site.urls])
  t.equal(run.code, 0, run.stderr)
  const files = (await readdir(out)).sort()
  t.equal(files.length, 15)
  t.equal(files[0], '000-127.0.0.1-wiki-Portal-Arts.html')
  t.equal(files[9], '009-127.0.0.1-wiki-Python_-programming_language.html')
  t.equal(files[12], '012-127.0.0.1-wiki-Node.js.html')
  for (const [i, name] of files.entries()) {
    t.ok(/^\d{3}-[A-Za-z0-9._-]+$/.test(name), `${name} is a plain file name`)
    t.ok((await readFile(join(out, name))).equals(site.bodies[i] as Buffer), `${name}: same bytes as served`)
  }
})

t.test('--json prints the final job document with every result, and nothing else', async (t) => {
  const site = await startSeedSite()
  t.teardown(site.close)
  const { base } = await startService(t)
  const run = await runCli(t, ['get', '-s', base, '--json', '--timeout', '10000', '--max-bytes', '1M', '--no-keep-content', ...site.urls])
  t.equal(run.code, 0, run.stderr)
  const doc = JSON.parse(run.stdout)
  t.equal(doc.state, 'completed')
  t.same(doc.counts, { pending: 0, running: 0, succeeded: 15, failed: 0, cancelled: 0 })
  t.equal(doc.results.length, 15)
  t.same(doc.results.map((r: { index: number }) => r.index), Array.from({ length: 15 }, (_, i) => i), 'in input order')
  t.match(doc.options, { timeoutMs: 10000, maxBytes: 1048576, keepContent: false }, 'flags became job options')
  t.equal(doc.results[0].contentUrl, null, 'no content kept')
})

t.test('-f reads a URL list (comments and blank lines skipped); -f - reads stdin', async (t) => {
  const site = await startSeedSite()
  t.teardown(site.close)
  const { base } = await startService(t)
  const dir = await mkdtemp(join(tmpdir(), 'trawl-cli-'))
  t.teardown(() => rm(dir, { recursive: true, force: true }))
  const list = `# the seed, first three\n\n${site.urls.slice(0, 3).join('\n')}\n   \n# end\n`
  await writeFile(join(dir, 'urls.txt'), list)
  const fromFile = await runCli(t, ['get', '-s', base, '-f', join(dir, 'urls.txt'), site.urls[3] as string])
  t.equal(fromFile.code, 0, fromFile.stderr)
  t.match(lines(fromFile.stdout).at(-1), /^Downloaded 4 URLs/, 'file and argument URLs together')
  const fromStdin = await runCli(t, ['get', '-s', base, '-f', '-'], { input: list.replaceAll('\n', '\r\n') })
  t.equal(fromStdin.code, 0, fromStdin.stderr)
  t.match(lines(fromStdin.stdout).at(-1), /^Downloaded 3 URLs in \S+ s: 3 succeeded, 0 failed$/)
})

t.test('TRAWL_SERVER is the default server', async (t) => {
  const site = await startSeedSite()
  t.teardown(site.close)
  const { base } = await startService(t)
  const run = await runCli(t, ['get', site.urls[0] as string], { env: { TRAWL_SERVER: base } })
  t.equal(run.code, 0, run.stderr)
  t.match(run.stdout, /^Read 56000 from /)
})

function failedMessage (out: string[], url: string): string {
  return out.find((l) => l.startsWith(`Failed ${url}: HTTP_STATUS `))?.slice(`Failed ${url}: HTTP_STATUS `.length) ?? ''
}
