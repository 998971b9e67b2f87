import { createHash, randomBytes } from 'node:crypto'
import { mkdir, open, rename, rm, unlink } from 'node:fs/promises'
import type { FileHandle } from 'node:fs/promises'
import { resolve, sep } from 'node:path'
import { Readable } from 'node:stream'
import { eachChunk, SourceFailure, wholeBody } from './body-chunks.js'
import { SmallFileWriter } from './fs-writer.js'
import { checkJobId, checkKey, ContentStoreError } from './store.js'
import type { ContentBody, ContentKey, ContentMeta, ContentStore, PutOptions, PutResult, StoredBody } from './store.js'

export interface FsContentStoreOptions {
  /** The folder that holds one sub-folder per job (`CONTENT_DIR`); created when missing. */
  dir: string
  /**
   * fsync each body before it is renamed into place, so that a body whose result is in Redis
   * survives a power cut too. Off by default: a process crash (kill -9) cannot leave a partial
   * body either way, Redis itself syncs only every second, and an fsync per small page costs
   * more than the rest of its fetch. Without it, a body torn by a power cut is caught by a
   * reader that checks it against its result's sha256: the archive does; `GET .../content`
   * serves the bytes as stored, with that sha256 as its ETag, for the client to check.
   * @defaultValue false
   */
  fsync?: boolean
}

/** Bodies up to this size are gathered in memory and written whole by SmallFileWriter (fs-writer.ts: in place, or by its thread while they come quickly). */
const SMALL_BODY_BYTES = 256 * 1024

/** The prefix of temporary files; no key maps to a name that starts with it. */
const TMP = '.tmp-'

/**
 * Bodies as plain files: `<dir>/<jobId>/<index>`, written to `<dir>/<jobId>/.tmp-<index>-<random>`
 * and renamed into place once complete (rename within one folder is atomic on POSIX file
 * systems). Every process sharing the folder (one machine, or one volume) sees the same bodies.
 */
export function createFsContentStore (options: FsContentStoreOptions): ContentStore {
  return new FsContentStore(options)
}

class FsContentStore implements ContentStore {
  readonly kind = 'fs'
  /** The store's folder, resolved, with its trailing separator. */
  readonly #base: string
  readonly #fsync: boolean
  /** This store's mark in temporary names (apart from other processes'), and their counter. */
  readonly #tag = randomBytes(6).toString('hex')
  #seq = 0
  /** Where bodies up to SMALL_BODY_BYTES are written (off the event loop while they come quickly). */
  readonly #writer = new SmallFileWriter()

  constructor (options: FsContentStoreOptions) {
    const root = resolve(options.dir)
    this.#base = root.endsWith(sep) ? root : root + sep
    this.#fsync = options.fsync ?? false
  }

  // Plain concatenation rather than path.join per body (its normalising showed in profiles):
  // the root is resolved once, and checkKey allows no separator or dot segment in a key.
  #jobDir (jobId: string): string {
    return this.#base + jobId
  }

  #pathOf (key: ContentKey): string {
    checkKey(key)
    return this.#base + key.jobId + sep + String(key.index)
  }

  async put (key: ContentKey, body: ContentBody, _meta: ContentMeta, opts: PutOptions = {}): Promise<PutResult> {
    const path = this.#pathOf(key)
    // Unique without a random draw per body (randomFillSync costs more than the write of a
    // small page): this store's tag, then a counter.
    const tmp = `${this.#jobDir(key.jobId)}${sep}${TMP}${key.index}-${this.#tag}${(this.#seq++).toString(36)}`
    if (Array.isArray(body)) {
      const whole = wholeBody(body as readonly Uint8Array[])
      if (whole.byteLength <= SMALL_BODY_BYTES) return await this.#putSmall(key, tmp, path, whole, opts.signal)
    }
    const hash = createHash('sha256')
    // A body is held in memory while it is small, and goes to a temporary file once it is not.
    const small: Buffer[] = []
    let bytes = 0
    const file: { fh: FileHandle | null } = { fh: null }
    try {
      await eachChunk(body, opts.signal, (chunk) => {
        hash.update(chunk)
        bytes += chunk.byteLength
        if (file.fh === null && bytes <= SMALL_BODY_BYTES) {
          small.push(chunk)
          return undefined
        }
        return this.#toFile(key.jobId, tmp, file, small, chunk)
      })
      if (file.fh === null) {
        await this.#writer.write(this.#jobDir(key.jobId), tmp, path, small.length === 1 ? small[0] as Buffer : Buffer.concat(small, bytes), this.#fsync)
      } else {
        if (this.#fsync) await file.fh.sync()
        const fh = file.fh
        file.fh = null
        await fh.close()
        await rename(tmp, path)
      }
    } catch (err) {
      await file.fh?.close().catch(() => {})
      await unlink(tmp).catch(() => {})
      if (err instanceof SourceFailure) throw err.inner
      if (opts.signal?.aborted) throw opts.signal.reason
      throw new ContentStoreError('fs', `put ${key.jobId}/${key.index}`, err)
    }
    return { bytes, sha256: hash.digest('hex') }
  }

  /** A small body given whole (decode.ts reads small pages so): no chunk loop, no abort listener. */
  async #putSmall (key: ContentKey, tmp: string, path: string, data: Buffer, signal: AbortSignal | undefined): Promise<PutResult> {
    signal?.throwIfAborted()
    try {
      await this.#writer.write(this.#jobDir(key.jobId), tmp, path, data, this.#fsync)
    } catch (err) {
      // The writer leaves no temporary file behind (fs-writer-thread.mjs writeOne).
      if (signal?.aborted === true) throw signal.reason
      throw new ContentStoreError('fs', `put ${key.jobId}/${key.index}`, err)
    }
    return { bytes: data.byteLength, sha256: createHash('sha256').update(data).digest('hex') }
  }

  /** A body past SMALL_BODY_BYTES: what was held goes to a new temporary file, then every chunk. */
  async #toFile (jobId: string, tmp: string, file: { fh: FileHandle | null }, small: Buffer[], chunk: Buffer): Promise<void> {
    if (file.fh === null) {
      file.fh = await this.#openTmp(jobId, tmp)
      for (const part of small.splice(0)) await writeAll(file.fh, part)
    }
    await writeAll(file.fh, chunk)
  }

  /** Opens a new temporary file; the job's folder is made only when it is missing (ENOENT), not per body. */
  async #openTmp (jobId: string, tmp: string): Promise<FileHandle> {
    try {
      return await open(tmp, 'wx')
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err
      await mkdir(this.#jobDir(jobId), { recursive: true })
      return await open(tmp, 'wx')
    }
  }

  async get (key: ContentKey): Promise<StoredBody | null> {
    const path = this.#pathOf(key)
    let fh: FileHandle
    try {
      fh = await open(path, 'r')
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return null
      throw new ContentStoreError('fs', `get ${key.jobId}/${key.index}`, err)
    }
    let streaming = false
    try {
      const { size } = await fh.stat()
      if (size > SMALL_BODY_BYTES) {
        const body = fh.createReadStream()
        streaming = true
        return { body, size }
      }
      // A small body is read whole in one call and the file closed at once: a read stream's
      // two reads, its close and its chunk events cost the API more than serving the bytes
      // (docs/bench-results.md, content reads).
      const whole = await readWhole(fh, size)
      return { body: Readable.from([whole], { objectMode: false }), size, whole }
    } catch (err) {
      throw new ContentStoreError('fs', `get ${key.jobId}/${key.index}`, err)
    } finally {
      if (!streaming) await fh.close().catch(() => {})
    }
  }

  async deleteJob (jobId: string): Promise<void> {
    checkJobId(jobId)
    try {
      await rm(this.#jobDir(jobId), { recursive: true, force: true, maxRetries: 3 })
    } catch (err) {
      throw new ContentStoreError('fs', `delete job ${jobId}`, err)
    }
  }

  // Every file is closed by the operation that opened it; the writer thread stops once idle.
  async close (): Promise<void> {
    await this.#writer.close()
  }
}

/**
 * The first `size` bytes of an open file, in as few reads as it takes (one, unless the
 * kernel returns less). A body is renamed into place only once complete and the open file is
 * that body's, so it cannot shrink; a short file is an error, not a short body.
 */
async function readWhole (fh: FileHandle, size: number): Promise<Buffer> {
  const whole = Buffer.allocUnsafe(size)
  let at = 0
  while (at < size) {
    const { bytesRead } = await fh.read(whole, at, size - at, at)
    if (bytesRead === 0) throw new Error(`the file ended after ${at} of its ${size} bytes`)
    at += bytesRead
  }
  return whole
}

// write(2) on a regular file may write less than asked (a nearly full disk): go on from there.
async function writeAll (fh: FileHandle, chunk: Buffer): Promise<void> {
  let offset = 0
  while (offset < chunk.length) {
    const { bytesWritten } = await fh.write(chunk, offset)
    offset += bytesWritten
  }
}
