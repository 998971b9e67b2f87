import t from 'tap'
import { byteSize, jobOptionsOf, parseUrlList } from '../../src/cli/args.js'
import type { JobSummary, ResultItem } from '../../src/cli/documents.js'
import { formatBytes, resultLine, statusLine, summaryLine } from '../../src/cli/format.js'
import { fileNameFor } from '../../src/cli/save.js'
import { readSse, type SseItem } from '../../src/cli/sse.js'

// The client's pure parts: SSE parsing, file names, URL lists, sizes and lines.

async function parse (...chunks: string[]): Promise<SseItem[]> {
  const encoder = new TextEncoder()
  async function * body () { for (const c of chunks) yield encoder.encode(c) }
  const out: SseItem[] = []
  for await (const item of readSse(body())) out.push(item)
  return out
}

t.test('readSse: events, ids, retry, comments, any line ending, any chunking', async (t) => {
  const stream = 'retry: 2000\n\nid: 0-0\nevent: state\ndata: {"a":1}\n\n: heartbeat\n\nid: 5-1\nevent: result\ndata: line one\ndata: line two\n\n'
  const expected: SseItem[] = [
    { kind: 'retry', ms: 2000 },
    { kind: 'event', event: 'state', data: '{"a":1}', id: '0-0' },
    { kind: 'comment', text: 'heartbeat' },
    { kind: 'event', event: 'result', data: 'line one\nline two', id: '5-1' }
  ]
  t.same(await parse(stream), expected)
  t.same(await parse(...stream.split('')), expected, 'one character at a time')
  t.same(await parse(stream.replaceAll('\n', '\r\n')), expected, 'CRLF')
  t.same(await parse(...stream.replaceAll('\n', '\r').split('')), expected, 'CR only, split between CR and what follows')
  t.same(await parse('\uFEFFdata: x\n\n'), [{ kind: 'event', event: 'message', data: 'x', id: undefined }], 'a BOM is skipped; default event name')
  t.same(await parse('id: 1-1\n\ndata: y\n\n'), [{ kind: 'event', event: 'message', data: 'y', id: '1-1' }], 'an id alone sets the last id')
  t.same(await parse('data: cut off'), [], 'an event without its blank line is dropped')
  t.same(await parse('retry: soon\ndata:\n\n'), [{ kind: 'event', event: 'message', data: '', id: undefined }], 'a bad retry is ignored')
})

t.test('fileNameFor: index, host and path as one safe name, extension from the type', async (t) => {
  t.equal(fileNameFor(11, 15, 'https://en.wikipedia.org/wiki/PHP', 'text/html; charset=UTF-8'), '011-en.wikipedia.org-wiki-PHP.html')
  t.equal(fileNameFor(0, 15, 'https://en.wikipedia.org/wiki/Portal%3AArts', 'text/html'), '000-en.wikipedia.org-wiki-Portal-Arts.html')
  t.equal(fileNameFor(3, 2000, 'http://x.test/data.json', 'application/json'), '0003-x.test-data.json', 'no doubled extension; width for 2000')
  t.equal(fileNameFor(1, 2, 'http://x.test/a?b=c&d=e', null), '001-x.test-a-b-c-d-e')
  t.equal(fileNameFor(1, 2, 'http://x.test/', 'image/png'), '001-x.test.png')
  for (const evil of ['http://x.test/%2e%2e%2f%2e%2e%2fetc%2fpasswd', 'http://x.test/..%5c..%5cwindows', 'http://x.test/a/%00/b', 'not a url/../../etc']) {
    const name = fileNameFor(7, 10, evil, 'text/plain')
    t.match(name, /^007(-[A-Za-z0-9_][A-Za-z0-9._-]*)?\.txt$/, `${evil} -> ${name}`)
    t.notMatch(name, /\.\.|\/|\\/, 'no traversal')
  }
  t.ok(fileNameFor(0, 1, `http://x.test/${'a'.repeat(500)}`, 'text/html').length <= 130, 'long paths are cut')
})

t.test('URL lists, sizes and job options', async (t) => {
  t.same(parseUrlList('# list\n\nhttp://a/\r\n  http://b/  \n#http://c/\n'), ['http://a/', 'http://b/'])
  t.equal(byteSize('1048576'), 1048576)
  t.equal(byteSize('512k'), 512 * 1024)
  t.equal(byteSize('10M'), 10 * 1024 * 1024)
  t.equal(byteSize('1GiB'), 1024 ** 3)
  t.throws(() => byteSize('0'))
  t.throws(() => byteSize('ten'))
  t.same(jobOptionsOf({ server: 's', keepContent: true }), {}, 'nothing given: the server decides')
  t.same(jobOptionsOf({ server: 's', keepContent: false, concurrency: 3, timeout: 500, retries: 0, maxBytes: 10 }),
    { concurrency: 3, timeoutMs: 500, retries: 0, maxBytes: 10, keepContent: false })
})

t.test('lines', async (t) => {
  const item: ResultItem = { index: 0, url: 'http://a/', state: 'succeeded', status: 200, finalUrl: 'http://a/', contentType: 'text/html', bytes: 56000, durationMs: 12, attempts: 1, error: null, sha256: null, contentUrl: '/jobs/j/results/0/content', waitingFor: null }
  t.equal(resultLine(item), 'Read 56000 from http://a/ (200, 12 ms)')
  t.equal(resultLine({ ...item, state: 'failed', status: 404, error: { code: 'HTTP_STATUS', message: 'the server answered 404' } }), 'Failed http://a/: HTTP_STATUS the server answered 404')
  t.equal(resultLine({ ...item, state: 'cancelled', error: null }), 'Failed http://a/: CANCELLED')
  const job = {
    id: 'j_X',
    state: 'completed',
    total: 15,
    bytes: 3_101_000,
    durationMs: 412,
    startedAt: null,
    finishedAt: null,
    counts: { pending: 0, running: 0, succeeded: 14, failed: 1, cancelled: 0 }
  } as unknown as JobSummary
  t.equal(summaryLine(job), 'Downloaded 15 URLs in 0.41 s: 14 succeeded, 1 failed')
  t.equal(summaryLine({ ...job, total: 1, counts: { ...job.counts, succeeded: 0, failed: 0, cancelled: 1 } }), 'Downloaded 1 URL in 0.41 s: 0 succeeded, 0 failed, 1 cancelled')
  t.equal(summaryLine({ ...job, durationMs: null, startedAt: '2026-01-01T00:00:00.000Z', finishedAt: '2026-01-01T00:00:01.500Z' }), 'Downloaded 15 URLs in 1.50 s: 14 succeeded, 1 failed')
  t.equal(statusLine(job), 'Job j_X is completed: 15/15 done (14 succeeded, 1 failed, 0 cancelled, 0 running, 0 pending), 3.10 MB in 0.41 s')
  t.same([0, 999, 1000, 56_000, 3_101_000, 2_500_000_000].map(formatBytes), ['0 B', '999 B', '1.00 kB', '56.0 kB', '3.10 MB', '2.50 GB'])
})
