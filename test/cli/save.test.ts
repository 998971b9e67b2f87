import { createHash } from 'node:crypto'
import { mkdtemp, readdir, readFile, rm } from 'node:fs/promises'
import { createServer, type Socket } from 'node:net'
import type { AddressInfo } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import t from 'tap'
import type { ResultItem } from '../../src/cli/documents.js'
import { TrawlClient } from '../../src/cli/http.js'
import { BodySaver, fileNameFor, MANIFEST } from '../../src/cli/save.js'

// `-o`'s saver on its own, against a server that answers content requests as written here
// (raw HTTP/1.1 on a socket, so that an answer can break off in the middle of its body).

const TOTAL = 4

function bodyOf (index: number, size: number): Buffer {
  return Buffer.alloc(size, createHash('sha256').update(`body ${index}`).digest())
}

/** index -> how the server answers it. */
const answers: Record<number, { body: Buffer, send: 'whole' | 'cut' | 'chunked' }> = {
  // A small and a large body with their Content-Length, one without (chunked), and one whose
  // connection drops after 40 % of the bytes its Content-Length promised.
  0: { body: bodyOf(0, 300 * 1024), send: 'whole' },
  1: { body: bodyOf(1, 2 * 1024 * 1024 + 17), send: 'whole' },
  2: { body: bodyOf(2, 100_000), send: 'cut' },
  3: { body: bodyOf(3, 50_000), send: 'chunked' }
}

function answer (socket: Socket, index: number): void {
  const a = answers[index]
  if (a === undefined) {
    socket.end('HTTP/1.1 404 Not Found\r\ncontent-length: 0\r\n\r\n')
    return
  }
  const head = 'HTTP/1.1 200 OK\r\ncontent-type: text/html\r\n'
  if (a.send === 'chunked') {
    socket.write(`${head}transfer-encoding: chunked\r\n\r\n`)
    for (let at = 0; at < a.body.length; at += 16_384) {
      const part = a.body.subarray(at, at + 16_384)
      socket.write(`${part.length.toString(16)}\r\n`)
      socket.write(part)
      socket.write('\r\n')
    }
    socket.write('0\r\n\r\n')
    return
  }
  socket.write(`${head}content-length: ${a.body.length}\r\n\r\n`)
  if (a.send === 'whole') {
    socket.write(a.body)
    return
  }
  socket.write(a.body.subarray(0, Math.floor(a.body.length * 0.4)), () => socket.destroy())
}

function item (index: number): ResultItem {
  const a = answers[index] as { body: Buffer }
  return {
    index,
    url: `http://127.0.0.1/page/${index}`,
    state: 'succeeded',
    status: 200,
    finalUrl: `http://127.0.0.1/page/${index}`,
    contentType: 'text/html',
    bytes: a.body.length,
    durationMs: 1,
    attempts: 1,
    error: null,
    sha256: createHash('sha256').update(a.body).digest('hex'),
    contentUrl: `/jobs/j_test/results/${index}/content`,
    waitingFor: null
  } as ResultItem
}

t.test('each body is saved with its own bytes; one that breaks off leaves no file, is reported and counted, and the rest go on', async (t) => {
  const server = createServer((socket) => {
    let seen = ''
    socket.on('data', (chunk: Buffer) => {
      seen += chunk.toString('latin1')
      // One request per connection is enough here; keep-alive requests follow one another.
      for (let end = seen.indexOf('\r\n\r\n'); end >= 0; end = seen.indexOf('\r\n\r\n')) {
        const index = Number(/^GET \/jobs\/j_test\/results\/(\d+)\/content /.exec(seen)?.[1] ?? NaN)
        seen = seen.slice(end + 4)
        answer(socket, index)
      }
    })
    socket.on('error', () => {})
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  t.teardown(() => new Promise<void>((resolve) => server.close(() => resolve())))
  const dir = await mkdtemp(join(tmpdir(), 'trawl-save-'))
  t.teardown(() => rm(dir, { recursive: true, force: true }))

  const client = new TrawlClient(`http://127.0.0.1:${(server.address() as AddressInfo).port}`)
  const reports: string[] = []
  const saver = new BodySaver(client, dir, TOTAL, (message) => reports.push(message))
  for (let i = 0; i < TOTAL; i++) saver.add(item(i))
  t.equal(await saver.done(), 1, 'one body could not be saved')

  const name = (i: number): string => fileNameFor(i, TOTAL, item(i).url, 'text/html')
  t.same((await readdir(dir)).sort(), [name(0), name(1), name(3), MANIFEST].sort(), 'no file for the body that broke off')
  for (const i of [0, 1, 3]) {
    t.ok((await readFile(join(dir, name(i)))).equals(answers[i]?.body as Buffer), `body ${i}: the bytes served`)
  }
  t.equal(reports.length, 1)
  t.match(reports[0], /^could not save http:\/\/127\.0\.0\.1\/page\/2: /)
  const manifest = (await readFile(join(dir, MANIFEST), 'utf8')).trim().split('\n').map((line) => JSON.parse(line) as { index: number, file: string | null })
  t.same(manifest.map((m) => [m.index, m.file]), [[0, name(0)], [1, name(1)], [2, null], [3, name(3)]], 'the manifest names each saved file, null for the one that is not')
})
