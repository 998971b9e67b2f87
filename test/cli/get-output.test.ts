import { createHash } from 'node:crypto'
import { mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises'
import { createServer } from 'node:http'
import type { AddressInfo } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import t from 'tap'
import { startSeedSite } from '../helpers/seed.js'
import { expectExit, lines, runCli, startService } from './helpers.js'

// `trawl get` with -o, --json and -f: where the URLs come from and where the results go.

t.test('-o DIR saves each body under a safe name; the bytes are the ones served', async (t) => {
  const site = await startSeedSite()
  t.teardown(site.close)
  const { base } = await startService(t)
  const dir = await mkdtemp(join(tmpdir(), 'trawl-cli-'))
  t.teardown(() => rm(dir, { recursive: true, force: true }))
  const out = join(dir, 'pages')
  const run = await runCli(t, ['get', '-s', base, '-o', out, ...site.urls])
  expectExit(t, run, 0)
  const all = await readdir(out)
  t.ok(all.includes('results.ndjson'), 'the manifest is beside the bodies')
  const files = all.filter((f) => f !== 'results.ndjson').sort()
  t.equal(files.length, 15)
  t.equal(files[0], '000-127.0.0.1-wiki-Portal-Arts.html')
  t.equal(files[9], '009-127.0.0.1-wiki-Python_-programming_language.html')
  t.equal(files[12], '012-127.0.0.1-wiki-Node.js.html')
  for (const [i, name] of files.entries()) {
    t.ok(/^\d{3}-[A-Za-z0-9._-]+$/.test(name), `${name} is a plain file name`)
    t.ok((await readFile(join(out, name))).equals(site.bodies[i] as Buffer), `${name}: same bytes as served`)
  }
})

/** Page `i` of the many-pages site: its own bytes, of a size that varies from 1 byte to ~60 KB. */
function pageBody (i: number): Buffer {
  const size = 1 + ((i * 7919) % 60_000)
  const seed = createHash('sha256').update(`page ${i}`).digest()
  return Buffer.alloc(size, seed)
}

t.test('-o DIR with --parallel: every body of 200 URLs with its own bytes, and results.ndjson beside them', async (t) => {
  const server = createServer((req, res) => {
    const i = Number(/^\/page\/(\d+)$/.exec(req.url ?? '')?.[1] ?? NaN)
    if (!Number.isInteger(i) || i === 13) return res.writeHead(404).end('no such page')
    res.writeHead(200, { 'content-type': 'application/octet-stream' }).end(pageBody(i))
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  t.teardown(() => new Promise((resolve) => server.close(resolve)))
  const origin = `http://127.0.0.1:${(server.address() as AddressInfo).port}`
  const { base } = await startService(t, { env: { HOST_CONCURRENCY: '0' } })
  const dir = await mkdtemp(join(tmpdir(), 'trawl-cli-'))
  t.teardown(() => rm(dir, { recursive: true, force: true }))
  const urls = Array.from({ length: 200 }, (_, i) => `${origin}/page/${i}`)
  await writeFile(join(dir, 'urls.txt'), urls.join('\n'))
  const out = join(dir, 'pages')
  const run = await runCli(t, ['get', '-s', base, '-c', '20', '--retries', '0', '--parallel', '24', '-o', out, '-f', join(dir, 'urls.txt')])
  expectExit(t, run, 1)
  t.match(lines(run.stdout).at(-1), /^Downloaded 200 URLs in \S+ s: 199 succeeded, 1 failed$/)

  const manifest = (await readFile(join(out, 'results.ndjson'), 'utf8')).trimEnd().split('\n').map((l) => JSON.parse(l) as { index: number, url: string, state: string, bytes: number, file: string | null })
  t.same(manifest.map((r) => r.index), urls.map((_, i) => i), 'the manifest lists every result, in input order')
  t.same(manifest.map((r) => r.url), urls)
  const files = new Set(await readdir(out))
  t.equal(files.size, 200, '199 bodies and the manifest')
  let same = 0
  for (const r of manifest) {
    if (r.index === 13) {
      t.match(r, { state: 'failed', file: null }, 'the failed URL is in the manifest, with no file')
      continue
    }
    t.equal(r.file, `${String(r.index).padStart(3, '0')}-127.0.0.1-page-${r.index}`)
    if (r.file === null || !files.has(r.file)) continue
    if ((await readFile(join(out, r.file))).equals(pageBody(r.index))) same++
  }
  t.equal(same, 199, 'every saved file holds exactly the bytes served')
})

t.test('--json prints the final job document with every result, and nothing else', async (t) => {
  const site = await startSeedSite()
  t.teardown(site.close)
  const { base } = await startService(t)
  const run = await runCli(t, ['get', '-s', base, '--json', '--timeout', '10000', '--max-bytes', '1M', '--no-keep-content', ...site.urls])
  expectExit(t, run, 0)
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
  expectExit(t, fromFile, 0)
  t.match(lines(fromFile.stdout).at(-1), /^Downloaded 4 URLs/, 'file and argument URLs together')
  const fromStdin = await runCli(t, ['get', '-s', base, '-f', '-'], { input: list.replaceAll('\n', '\r\n') })
  expectExit(t, fromStdin, 0)
  t.match(lines(fromStdin.stdout).at(-1), /^Downloaded 3 URLs in \S+ s: 3 succeeded, 0 failed$/)
})
