import { CreateBucketCommand, ListMultipartUploadsCommand, PutObjectCommand, S3Client } from '@aws-sdk/client-s3'
import { createHash } from 'node:crypto'
import { mkdtemp, readdir, rm, stat, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { pipeline } from 'node:stream/promises'
import { setFlagsFromString } from 'node:v8'
import { runInNewContext } from 'node:vm'
import { Writable } from 'node:stream'
import t from 'tap'
import type { Test } from 'tap'
import { checkBody, ContentIntegrityError, ContentStoreError, createContentStore, verifyingStream } from '../../src/content/index.js'
import type { ContentKey, ContentStore } from '../../src/content/index.js'
import { S3RVER_CREDENTIALS, startS3 } from './s3-server.js'

const MIB = 1024 * 1024
// A full garbage collection on demand, to see which chunks a put still holds.
setFlagsFromString('--expose-gc')
const gc = runInNewContext('gc') as () => void

interface Harness {
  store: ContentStore
  /** Temporary files or unfinished uploads the store left for a job. */
  leftovers: (jobId: string) => Promise<string[]>
  /** Replaces a stored body behind the store's back. */
  tamper: (key: ContentKey, bytes: Buffer) => Promise<void>
  /** Bytes the backend has on disk (the fs store's folder, s3rver's data folder). */
  storedBytes: () => Promise<number>
  /** Bytes a put may read ahead of what reached the disk. */
  readAhead: number
  /** A store on the same backend that cannot work, and the secret it was given. */
  broken: () => Promise<{ store: ContentStore, secret: string }>
}

const backends: Record<string, (t: Test) => Promise<Harness>> = {
  async fs (t) {
    const dir = await mkdtemp(join(tmpdir(), 'trawl-content-'))
    t.teardown(() => rm(dir, { recursive: true, force: true }))
    const store = createContentStore({ store: 'fs', dir })
    t.teardown(() => store.close())
    return {
      store,
      storedBytes: () => du(dir),
      readAhead: MIB,
      leftovers: async (jobId) => (await readdir(join(dir, jobId)).catch(() => [] as string[])).filter((f) => f.startsWith('.')),
      tamper: (key, bytes) => writeFile(join(dir, key.jobId, String(key.index)), bytes),
      broken: async () => {
        // A file where the folder should be: every put fails with ENOTDIR.
        const file = join(dir, 'not-a-dir')
        await writeFile(file, 'x')
        return { store: createContentStore({ store: 'fs', dir: file }), secret: 'no-secret-in-fs' }
      }
    }
  },
  async s3 (t) {
    const { endpoint, directory } = await startS3(t)
    const bucket = `bucket-${Math.random().toString(36).slice(2, 10)}`
    const raw = new S3Client({ endpoint, region: 'us-east-1', forcePathStyle: true, credentials: S3RVER_CREDENTIALS })
    t.teardown(() => raw.destroy())
    await raw.send(new CreateBucketCommand({ Bucket: bucket }))
    const config = { store: 's3' as const, bucket, prefix: 'trawl-test', endpoint, region: 'us-east-1', forcePathStyle: true }
    const store = createContentStore(config, { credentials: S3RVER_CREDENTIALS })
    t.teardown(() => store.close())
    return {
      store,
      storedBytes: () => du(directory),
      // One multipart part (5 MiB) is gathered before it is sent.
      readAhead: 6 * MIB,
      leftovers: async (jobId) => {
        const res = await raw.send(new ListMultipartUploadsCommand({ Bucket: bucket, Prefix: `trawl-test/${jobId}/` }))
        return (res.Uploads ?? []).map((u) => u.Key ?? '?')
      },
      tamper: async (key, bytes) => {
        await raw.send(new PutObjectCommand({ Bucket: bucket, Key: `trawl-test/${key.jobId}/${key.index}`, Body: bytes }))
      },
      broken: async () => {
        const secret = 'wJalrXUtnFEMI-K7MDENG-bPxRfiCYEXAMPLEKEY'
        const store = createContentStore(config, { credentials: { accessKeyId: 'AKIAIOSFODNN7EXAMPLE', secretAccessKey: secret } })
        return { store, secret }
      }
    }
  }
}

/** Bytes in the files under a folder; counted again when a file was renamed mid-count. */
async function du (dir: string): Promise<number> {
  for (;;) {
    let sum = 0
    let torn = false
    for (const entry of await readdir(dir, { withFileTypes: true, recursive: true }).catch(() => [])) {
      if (entry.isFile()) sum += await stat(join(entry.parentPath, entry.name)).then((s) => s.size, () => { torn = true; return 0 })
    }
    if (!torn) return sum
  }
}

async function readAll (store: ContentStore, key: ContentKey): Promise<Buffer | null> {
  const got = await store.get(key)
  if (got === null) return null
  const chunks: Buffer[] = []
  for await (const c of got.body) chunks.push(c as Buffer)
  const body = Buffer.concat(chunks)
  if (body.length !== got.size) throw new Error(`size ${got.size} but ${body.length} bytes read`)
  return body
}

const sha = (b: Buffer): string => createHash('sha256').update(b).digest('hex')

/** `total` bytes in 64 KiB chunks made as they are asked for, and their sha256 once done. */
function generated (total: number, onChunk: () => void = () => {}): { body: AsyncGenerator<Buffer>, sha256: () => string } {
  const hash = createHash('sha256')
  async function * body (): AsyncGenerator<Buffer> {
    for (let sent = 0, i = 0; sent < total; i++) {
      const chunk = Buffer.alloc(Math.min(64 * 1024, total - sent), i % 251)
      hash.update(chunk)
      sent += chunk.length
      onChunk()
      yield chunk
    }
  }
  return { body: body(), sha256: () => hash.digest('hex') }
}

for (const [name, make] of Object.entries(backends)) {
  t.test(`${name} store`, async (t) => {
    t.test('small and empty bodies round-trip with their sha256', async (t) => {
      const { store } = await make(t)
      const small = Buffer.from('<h1>hello</h1>')
      const put = await store.put({ jobId: 'j_a', index: 0 }, [small], { contentType: 'text/html' })
      t.same(put, { bytes: small.length, sha256: sha(small) })
      t.same(await readAll(store, { jobId: 'j_a', index: 0 }), small)
      const empty = await store.put({ jobId: 'j_a', index: 1 }, [], { contentType: null })
      t.same(empty, { bytes: 0, sha256: sha(Buffer.alloc(0)) })
      t.same(await readAll(store, { jobId: 'j_a', index: 1 }), Buffer.alloc(0))
    })

    t.test('a body read in one go (`whole`) holds the same bytes as its stream', async (t) => {
      const { store } = await make(t)
      const small = Buffer.alloc(200 * 1024, 'small page ')
      const big = Buffer.alloc(300 * 1024, 'big page ')
      await store.put({ jobId: 'j_w', index: 0 }, [small], { contentType: null })
      await store.put({ jobId: 'j_w', index: 1 }, [big], { contentType: null })
      const gotSmall = await store.get({ jobId: 'j_w', index: 0 })
      const gotBig = await store.get({ jobId: 'j_w', index: 1 })
      // The fs store reads bodies up to 256 KiB whole; the s3 store always streams.
      if (name === 'fs') t.ok(gotSmall?.whole?.equals(small), 'fs: a 200 KB body comes whole')
      else t.equal(gotSmall?.whole, undefined)
      t.equal(gotBig?.whole, undefined, 'a 300 KB body streams')
      gotSmall?.body.destroy()
      gotBig?.body.destroy()
      t.same(await readAll(store, { jobId: 'j_w', index: 0 }), small, 'the stream of a whole body')
      t.same(await readAll(store, { jobId: 'j_w', index: 1 }), big)
    })

    t.test('a missing key or job reads as null', async (t) => {
      const { store } = await make(t)
      await store.put({ jobId: 'j_a', index: 0 }, [Buffer.from('x')], { contentType: null })
      t.equal(await store.get({ jobId: 'j_a', index: 7 }), null)
      t.equal(await store.get({ jobId: 'j_none', index: 0 }), null)
    })

    t.test('a put over a key replaces the body', async (t) => {
      const { store } = await make(t)
      await store.put({ jobId: 'j_a', index: 0 }, [Buffer.from('first')], { contentType: null })
      await store.put({ jobId: 'j_a', index: 0 }, [Buffer.from('second')], { contentType: null })
      t.same(await readAll(store, { jobId: 'j_a', index: 0 }), Buffer.from('second'))
    })

    t.test('four 20 MB bodies stream in at once, read no further ahead than the store writes', async (t) => {
      const { store, storedBytes, readAhead } = await make(t)
      const n = 4
      const size = 20 * MIB
      const before = await storedBytes()
      let produced = 0
      let lag = 0
      const samples: Array<Promise<void>> = []
      // Every 32 chunks (2 MiB), compare what the bodies gave with what reached the disk.
      const sample = (): void => {
        produced += 64 * 1024
        if ((produced / (64 * 1024)) % 32 !== 0) return
        const at = produced
        samples.push(storedBytes().then((on) => { lag = Math.max(lag, at - (on - before)) }))
      }
      const bodies = Array.from({ length: n }, () => generated(size, sample))
      const puts = await Promise.all(bodies.map((b, i) => store.put({ jobId: 'j_big', index: i }, b.body, { contentType: 'application/octet-stream' })))
      await Promise.all(samples)
      for (const [i, put] of puts.entries()) t.same(put, { bytes: size, sha256: bodies[i]?.sha256() })
      t.ok(lag <= n * readAhead, `read at most ${(lag / MIB).toFixed(1)} MiB ahead of the disk (allowed ${n * readAhead / MIB}), for ${n * size / MIB} MiB stored`)
      const got = await store.get({ jobId: 'j_big', index: 2 })
      t.equal(got?.size, size)
      const check = await checkBody(got!.body, { sha256: puts[2]!.sha256, bytes: size })
      t.ok(check.ok, 'the body reads back whole')
    })

    t.test('chunks once written are let go: a put holds no more than it reads ahead', async (t) => {
      const { store, readAhead } = await make(t)
      const CHUNK = 256 * 1024
      const total = 3 * readAhead + 4 * MIB
      const refs: Array<WeakRef<Buffer>> = []
      let liveAtCheck = -1
      const ac = new AbortController()
      async function * body (): AsyncGenerator<Buffer> {
        for (let sent = 0; sent < total; sent += CHUNK) {
          if (sent >= 2 * readAhead + 2 * MIB && liveAtCheck < 0) {
            await new Promise((resolve) => setImmediate(resolve))
            gc()
            liveAtCheck = refs.filter((r) => r.deref() !== undefined).length * CHUNK
          }
          const chunk = Buffer.alloc(CHUNK, sent % 251)
          refs.push(new WeakRef(chunk))
          yield chunk
        }
      }
      // With a signal, as the lanes put: the abort's wait is the part that once held every chunk.
      await store.put({ jobId: 'j_gc', index: 0 }, body(), { contentType: null }, { signal: ac.signal })
      t.ok(liveAtCheck >= 0 && liveAtCheck <= readAhead + 2 * CHUNK, `${(liveAtCheck / MIB).toFixed(2)} MiB of ${((2 * readAhead + 2 * MIB) / MIB).toFixed(0)} MiB read still held (reads ahead ${(readAhead / MIB).toFixed(0)} MiB)`)
    })

    t.test('a body that fails mid-way leaves nothing behind', async (t) => {
      const { store, leftovers } = await make(t)
      const broke = new Error('connection reset by the origin')
      async function * failing (): AsyncGenerator<Buffer> {
        for (let i = 0; i < 110; i++) yield Buffer.alloc(64 * 1024, 1) // past one 5 MiB part
        throw broke
      }
      await t.rejects(store.put({ jobId: 'j_f', index: 0 }, failing(), { contentType: null }), broke, 'the body error comes back as it was')
      t.equal(await store.get({ jobId: 'j_f', index: 0 }), null)
      t.same(await leftovers('j_f'), [])
    })

    t.test('an aborted put leaves nothing behind', async (t) => {
      const { store, leftovers } = await make(t)
      const ac = new AbortController()
      const reason = new Error('job cancelled')
      let stalled!: () => void
      const atStall = new Promise<void>((resolve) => { stalled = resolve })
      async function * stalling (): AsyncGenerator<Buffer> {
        for (let i = 0; i < 110; i++) yield Buffer.alloc(64 * 1024, 2)
        stalled()
        await new Promise(() => {}) // an origin that stops sending
      }
      const put = store.put({ jobId: 'j_x', index: 0 }, stalling(), { contentType: null }, { signal: ac.signal })
      await atStall
      ac.abort(reason)
      await t.rejects(put, reason)
      t.equal(await store.get({ jobId: 'j_x', index: 0 }), null)
      t.same(await leftovers('j_x'), [])
    })

    t.test('deleteJob removes every body of one job and none of another', async (t) => {
      const { store } = await make(t)
      for (let i = 0; i < 5; i++) await store.put({ jobId: 'j_gone', index: i }, [Buffer.from(`g${i}`)], { contentType: null })
      await store.put({ jobId: 'j_kept', index: 0 }, [Buffer.from('k')], { contentType: null })
      await store.put({ jobId: 'j_gone2', index: 0 }, [Buffer.from('prefix neighbour')], { contentType: null })
      await store.deleteJob('j_gone')
      for (let i = 0; i < 5; i++) t.equal(await store.get({ jobId: 'j_gone', index: i }), null)
      t.same(await readAll(store, { jobId: 'j_kept', index: 0 }), Buffer.from('k'))
      t.same(await readAll(store, { jobId: 'j_gone2', index: 0 }), Buffer.from('prefix neighbour'))
      await store.deleteJob('j_gone') // again: a no-op
    })

    t.test('a truncated and a corrupted body are caught by their sha256', async (t) => {
      const { store, tamper } = await make(t)
      const body = Buffer.from('a body of some length, to be damaged in two ways')
      const key = { jobId: 'j_d', index: 0 }
      const { sha256, bytes } = await store.put(key, [body], { contentType: null })
      t.ok((await checkBody((await store.get(key))!.body, { sha256, bytes })).ok, 'intact')
      await tamper(key, body.subarray(0, 20))
      t.notOk((await checkBody((await store.get(key))!.body, { sha256, bytes })).ok, 'truncated')
      const sink = new Writable({ write: (_c, _e, cb) => cb() })
      await t.rejects(pipeline((await store.get(key))!.body, verifyingStream({ sha256, bytes }), sink), ContentIntegrityError)
      const flipped = Buffer.from(body)
      flipped[5] = (flipped[5] ?? 0) ^ 1
      await tamper(key, flipped)
      t.notOk((await checkBody((await store.get(key))!.body, { sha256 })).ok, 'corrupted')
      await t.rejects(pipeline((await store.get(key))!.body, verifyingStream({ sha256 }), new Writable({ write: (_c, _e, cb) => cb() })), ContentIntegrityError)
    })

    t.test('a store that fails says why, with no secret', async (t) => {
      const { broken } = await make(t)
      const { store, secret } = await broken()
      t.teardown(() => store.close())
      const err = await store.put({ jobId: 'j_e', index: 0 }, [Buffer.from('x')], { contentType: null }).catch((e: unknown) => e)
      t.ok(err instanceof ContentStoreError, 'a ContentStoreError')
      const message = (err as Error).message
      t.match(message, new RegExp(`^${name} content store: put `))
      t.notOk(message.includes(secret), 'no secret key')
      t.notOk(message.includes('AKIAIOSFODNN7EXAMPLE'), 'no access key id')
      t.notMatch(message, /X-Amz-Signature|Signature=/)
      t.equal((err as ContentStoreError).code, 'STORAGE_FAILED')
      await store.close()
    })

    t.test('keys that could leave their folder are refused', async (t) => {
      const { store } = await make(t)
      await t.rejects(store.put({ jobId: '../etc', index: 0 }, [], { contentType: null }), TypeError)
      await t.rejects(store.get({ jobId: 'j_a', index: -1 }), TypeError)
      await t.rejects(store.deleteJob('a/b'), TypeError)
    })
  })
}
