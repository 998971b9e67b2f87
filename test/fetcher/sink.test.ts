import { createHash } from 'node:crypto'
import { mkdtemp, readdir, readFile, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import t from 'tap'
import { createFsContentStore } from '../../src/content/fs-store.js'
import type { BodySink } from '../../src/fetcher/decode.js'
import { fetchPage } from '../../src/fetcher/fetch-page.js'
import { fetchTarget, MiB, never, opts, recordSleeps } from './fixtures.js'

// The fetcher's sink hook with the real fs content store behind it: a body streams into the
// store within the attempt, a body that fails leaves nothing, a store that fails is STORAGE_FAILED.

const { target, agent } = await fetchTarget(t)
const dir = await mkdtemp(join(tmpdir(), 'trawl-sink-'))
t.teardown(() => rm(dir, { recursive: true, force: true }))
const store = createFsContentStore({ dir })
const sinkFor = (index: number): BodySink => (chunks, meta, signal) => store.put({ jobId: 'j_sink', index }, chunks, meta, { signal })
const files = async () => (await readdir(join(dir, 'j_sink')).catch(() => [] as string[])).sort()

t.test('a plain and a gzip body stream into the store with their sha256', async (t) => {
  const plain = await fetchPage(agent, target.url('/bytes?n=300000&chunked=1'), opts, never, { sink: sinkFor(0) })
  t.match(plain, { ok: true, bytes: 300_000, sha256: /^[0-9a-f]{64}$/ })
  const gz = await fetchPage(agent, target.url('/encoded?n=200000&coding=gzip'), opts, never, { sink: sinkFor(1) })
  t.match(gz, { ok: true, bytes: 200_000, sha256: /^[0-9a-f]{64}$/ })
  const stored = await store.get({ jobId: 'j_sink', index: 1 })
  t.equal(stored?.size, 200_000, 'the decoded bytes are stored')
  stored?.body.destroy()
})

t.test('TOO_LARGE mid-stream, plain or decoded, aborts the put: nothing is visible', async (t) => {
  const before = await files()
  const plain = await fetchPage(agent, target.url(`/bytes?n=${4 * MiB}&chunked=1`), opts, never, { sink: sinkFor(2) })
  t.match(plain, { ok: false, sha256: null, error: { code: 'TOO_LARGE' } })
  const bomb = await fetchPage(agent, target.url('/gzip-bomb?members=64'), opts, never, { sink: sinkFor(3) })
  t.match(bomb, { ok: false, sha256: null, error: { code: 'TOO_LARGE' } })
  t.same(await files(), before, 'no body and no temporary file')
})

t.test('a sink that fails is STORAGE_FAILED, with its message, and is not retried', async (t) => {
  // Reads the first chunk, then fails, as a disk filling up would.
  const failing: BodySink = async (chunks) => {
    await (chunks as AsyncIterable<Buffer>)[Symbol.asyncIterator]().next()
    throw new Error('disk on fire')
  }
  const hooks = recordSleeps()
  const r = await fetchPage(agent, target.url('/bytes?n=100000&chunked=1'), { ...opts, retries: 3 }, never, { ...hooks, sink: failing })
  t.match(r, { ok: false, attempts: 1, sha256: null, error: { code: 'STORAGE_FAILED', message: /disk on fire/ } })
  t.same(hooks.sleeps, [])
  const decoded = await fetchPage(agent, target.url('/encoded?n=100000&coding=br'), opts, never, { sink: failing })
  t.match(decoded, { ok: false, error: { code: 'STORAGE_FAILED' } })
  const early: BodySink = async () => { throw new Error('store unreachable') }
  t.match(await fetchPage(agent, target.url('/bytes?n=100000'), opts, never, { sink: early }), { ok: false, error: { code: 'STORAGE_FAILED', message: /store unreachable/ } },
    'a sink that fails before it reads the body')
})

t.test('a body that fails keeps its own classification, not STORAGE_FAILED', async (t) => {
  const corrupt = await fetchPage(agent, target.url('/corrupt-encoded?coding=gzip'), opts, never, { sink: sinkFor(4) })
  t.match(corrupt, { ok: false, error: { code: 'NETWORK', message: /could not be decoded/ } })
  const slow = await fetchPage(agent, target.url('/trickle?every=20'), { ...opts, timeoutMs: 300 }, never, { sink: sinkFor(5) })
  t.match(slow, { ok: false, error: { code: 'TIMEOUT' } })
  t.notOk((await files()).some((f) => f === '4' || f === '5' || f.startsWith('.tmp-')), 'nothing of them is stored')
})

// A plain page that declares at most 64 KiB is read whole, then stored as one buffer (decode.ts
// WHOLE_BODY_BYTES): the same outcomes as the streamed way, each one checked here.
t.test('a small page with a Content-Length: stored whole, or nothing of it when it fails', async (t) => {
  const ok = await fetchPage(agent, target.url('/bytes?n=2000'), opts, never, { sink: sinkFor(10) })
  t.match(ok, { ok: true, bytes: 2000, sha256: createHash('sha256').update(Buffer.alloc(2000, 'a')).digest('hex') })
  t.same(await readFile(join(dir, 'j_sink', '10')), Buffer.alloc(2000, 'a'), 'the body is on disk as served')

  const cut = await fetchPage(agent, target.url('/cut?n=2000&sent=700'), opts, never, { sink: sinkFor(11) })
  t.match(cut, { ok: false, sha256: null, error: { code: 'NETWORK' } }, 'a body cut short is a network fault')
  t.ok(cut.bytes <= 700, 'the result says how far it got')
  const stalled = await fetchPage(agent, target.url('/cut?n=2000&sent=700&stall=1'), { ...opts, timeoutMs: 300 }, never, { sink: sinkFor(12) })
  t.match(stalled, { ok: false, error: { code: 'TIMEOUT' } }, 'a body that stalls ends at the deadline')
  const ac = new AbortController()
  const pending = fetchPage(agent, target.url('/cut?n=2000&sent=700&stall=1'), opts, ac.signal, { sink: sinkFor(13) })
  setTimeout(() => ac.abort(new Error('cancelled')), 100)
  t.match(await pending, { ok: false, error: { code: 'CANCELLED' } }, 'and one the caller aborts is cancelled')
  t.notOk((await files()).some((f) => ['11', '12', '13'].includes(f) || f.startsWith('.tmp-')), 'nothing of them is stored')

  const early: BodySink = async () => { throw new Error('store unreachable') }
  t.match(await fetchPage(agent, target.url('/bytes?n=2000'), { ...opts, retries: 2 }, never, { sink: early }),
    { ok: false, attempts: 1, error: { code: 'STORAGE_FAILED', message: /store unreachable/ } }, 'a store that fails is STORAGE_FAILED, not retried')
  t.match(await fetchPage(agent, target.url('/bytes?n=2000'), { ...opts, maxBytes: 1000 }, never, { sink: sinkFor(14) }),
    { ok: false, error: { code: 'TOO_LARGE' } }, 'a declared length past maxBytes is TOO_LARGE')
})
