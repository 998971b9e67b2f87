import { Readable, Writable } from 'node:stream'
import { pipeline } from 'node:stream/promises'
import zlib from 'node:zlib'
import t from 'tap'
import { ACCEPT_ENCODING, contentCodings, decoderFor, InflateAuto, isDecodeError } from '../../src/fetcher/codings.js'
import { fetchPage } from '../../src/fetcher/fetch-page.js'
import { fetchKept, fetchTarget, KiB, MiB, never, opts, recordSleeps } from './fixtures.js'

const { target, agent } = await fetchTarget(t)

/** Runs `input` (as the given chunks) through `decoder` and returns what comes out. */
async function decode (decoder: NodeJS.ReadWriteStream, chunks: Buffer[]): Promise<Buffer> {
  const out: Buffer[] = []
  const sink = new Writable({ write (c: Buffer, _e, cb) { out.push(c); cb() } })
  await pipeline(Readable.from(chunks), decoder, sink)
  return Buffer.concat(out)
}

t.test('contentCodings: outermost first, all or nothing', async (t) => {
  t.same(contentCodings(null), [])
  t.same(contentCodings(''), [])
  t.same(contentCodings('identity'), [])
  t.same(contentCodings('gzip'), ['gzip'])
  t.same(contentCodings('deflate, br'), ['br', 'deflate'], 'applied deflate then br: undone br first')
  t.same(contentCodings(' GZIP ,identity, x-gzip '), ['x-gzip', 'gzip'], 'case, blanks and identity')
  t.same(contentCodings('gzip, zstd'), [], 'one coding trawl cannot undo: none is undone')
  t.same(contentCodings('compress'), [])
  for (const c of ACCEPT_ENCODING.split(', ')) t.same(contentCodings(c), [c], `${c}, which trawl asks for, is undone`)
})

t.test('decoderFor and InflateAuto', async (t) => {
  const text = Buffer.from('trawl '.repeat(5000))
  t.same(await decode(decoderFor('gzip'), [zlib.gzipSync(text)]), text)
  t.same(await decode(decoderFor('x-gzip'), [zlib.gzipSync(text)]), text)
  t.same(await decode(decoderFor('br'), [zlib.brotliCompressSync(text)]), text)
  t.same(await decode(decoderFor('deflate'), [zlib.deflateSync(text)]), text, 'zlib-wrapped deflate')
  t.same(await decode(decoderFor('deflate'), [zlib.deflateRawSync(text)]), text, 'raw deflate')

  const wrapped = zlib.deflateSync(text)
  t.same(await decode(new InflateAuto(), [Buffer.alloc(0), wrapped.subarray(0, 1), wrapped.subarray(1)]), text,
    'an empty first chunk and a one-byte header chunk')
  t.same(await decode(new InflateAuto(), []), Buffer.alloc(0), 'no input, no output')
  t.same(await decode(decoderFor('gzip'), [zlib.gzipSync(text).subarray(0, -8)]), text, 'a gzip body cut before its trailer is accepted')

  const garbled = await decode(new InflateAuto(), [Buffer.from([0x78, 0xff, 0xff, 0xff])]).catch((err: unknown) => err)
  t.ok(isDecodeError(garbled), `garbled deflate is a decode error (${String(garbled)})`)
  t.notOk(isDecodeError(Object.assign(new Error('reset'), { code: 'ECONNRESET' })), 'a transport fault is not')
  t.notOk(isDecodeError(null))
})

t.test('bodies are decoded and counted decoded', async (t) => {
  const n = 200_000
  const expected = 'trawl '.repeat(Math.ceil(n / 6)).slice(0, n)
  for (const coding of ['gzip', 'deflate', 'deflate-raw', 'br']) {
    const r = await fetchKept(agent, target.url(`/encoded?n=${n}&coding=${coding}`), opts, never)
    t.equal(r.ok, true, coding)
    t.equal(r.bytes, n, `${coding}: decoded bytes`)
    t.equal(String(r.body), expected, `${coding}: decoded body`)
  }
  const dropped = await fetchPage(agent, target.url(`/encoded?n=${n}&coding=gzip`), opts, never)
  t.match(dropped, { ok: true, bytes: n, sha256: null }, 'without a sink, a decoded body is counted and dropped')
  for (const coding of ['gzip', 'deflate', 'br']) {
    const r = await fetchPage(agent, target.url(`/empty-encoded?coding=${coding}`), opts, never)
    t.match(r, { ok: true, bytes: 0 }, `an empty ${coding} body is an empty body`)
  }
  const unknown = await fetchPage(agent, target.url('/corrupt-encoded?coding=zstd'), opts, never)
  t.match(unknown, { ok: true, bytes: 29 }, 'a coding trawl cannot undo is kept as it came')

  const corrupt = await fetchPage(agent, target.url('/corrupt-encoded?coding=gzip'), { ...opts, retries: 2 }, never, recordSleeps())
  t.match(corrupt, { ok: false, status: 200, error: { code: 'NETWORK', message: /could not be decoded/ }, attempts: 1 }, 'a garbled body is not retried')
})

t.test('TOO_LARGE', async (t) => {
  const declared = await fetchPage(agent, target.url(`/bytes?n=${2 * MiB}`), { ...opts, retries: 2 }, never, recordSleeps())
  t.match(declared, { ok: false, status: 200, bytes: 0, sha256: null, attempts: 1, error: { code: 'TOO_LARGE', message: /2097152 bytes/ } },
    'a content-length past the cap ends it before reading')

  const streamed = await fetchPage(agent, target.url(`/bytes?n=${8 * MiB}&chunked=1`), opts, never)
  t.match(streamed, { ok: false, status: 200, sha256: null, error: { code: 'TOO_LARGE' } })
  t.ok(streamed.bytes > MiB && streamed.bytes <= MiB + 128 * KiB, `stopped just past the cap (${streamed.bytes})`)

  const exact = await fetchPage(agent, target.url(`/bytes?n=${MiB}&chunked=1`), opts, never)
  t.match(exact, { ok: true, bytes: MiB }, 'a body of exactly maxBytes fits')

  const encoded = await fetchPage(agent, target.url(`/encoded?n=${2 * MiB}&coding=br`), opts, never)
  t.equal(encoded.error?.code, 'TOO_LARGE', 'the cap is on decoded bytes, not wire bytes')
})

t.test('a gzip bomb ends TOO_LARGE without being inflated or read whole', async (t) => {
  // 1024 members of 16 MiB of zeros: 16 GiB decoded from ~16 MiB on the wire.
  const started = Date.now()
  const r = await fetchPage(agent, target.url('/gzip-bomb?members=1024'), { ...opts, maxBytes: 4 * MiB }, never)
  t.match(r, { ok: false, status: 200, sha256: null, error: { code: 'TOO_LARGE' } })
  t.ok(r.bytes > 4 * MiB && r.bytes <= 4 * MiB + 64 * KiB, `stopped just past the cap (${r.bytes})`)
  t.ok(Date.now() - started < 5000, `quickly (${Date.now() - started} ms), not after inflating 16 GiB`)
  t.equal(target.bomb.started, true)
  t.equal(target.bomb.finished, false, 'the server never got to send the whole body')
})
