import { randomBytes } from 'node:crypto'
import { closeSync, fsyncSync, mkdirSync, openSync, renameSync, writeSync } from 'node:fs'
import { mkdir, open, rename, rm, unlink } from 'node:fs/promises'
import type { FileHandle } from 'node:fs/promises'
import { addAbortListener } from 'node:events'
import { join, resolve } from 'node:path'
import { Digesting } from './digest.js'
import { checkJobId, checkKey, ContentStoreError } from './store.js'
import type { ContentBody, ContentKey, ContentMeta, ContentStore, PutOptions, PutResult, StoredBody } from './store.js'

export interface FsContentStoreOptions {
  /** The folder that holds one sub-folder per job (`CONTENT_DIR`); created when missing. */
  dir: string
  /**
   * fsync each body before it is renamed into place, so that a body whose result is in Redis
   * survives a power cut too. Off by default: a process crash (kill -9) cannot leave a partial
   * body either way, Redis itself syncs only every second, and an fsync per small page costs
   * more than the rest of its fetch. Without it, a body torn by a power cut is caught by its
   * sha256 on reading. @defaultValue false
   */
  fsync?: boolean
}

/** Bodies up to this size are gathered in memory and written in one synchronous step (#writeSmall). */
const SMALL_BODY_BYTES = 64 * 1024

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
  readonly #root: string
  readonly #fsync: boolean

  constructor (options: FsContentStoreOptions) {
    this.#root = resolve(options.dir)
    this.#fsync = options.fsync ?? false
  }

  #jobDir (jobId: string): string {
    return join(this.#root, jobId)
  }

  #pathOf (key: ContentKey): string {
    checkKey(key)
    return join(this.#root, key.jobId, String(key.index))
  }

  async put (key: ContentKey, body: ContentBody, _meta: ContentMeta, opts: PutOptions = {}): Promise<PutResult> {
    const path = this.#pathOf(key)
    const tmp = join(this.#jobDir(key.jobId), `${TMP}${key.index}-${randomBytes(6).toString('hex')}`)
    const source = new Digesting(body)
    // A body is held in memory while it is small, and goes to a temporary file once it is not.
    const small: Buffer[] = []
    let held = 0
    const file: { fh: FileHandle | null } = { fh: null }
    try {
      await eachChunk(source.chunks(), opts.signal, async (chunk) => {
        if (file.fh === null && held + chunk.byteLength <= SMALL_BODY_BYTES) {
          small.push(chunk)
          held += chunk.byteLength
          return
        }
        if (file.fh === null) {
          file.fh = await this.#openTmp(key.jobId, tmp)
          for (const part of small.splice(0)) await writeAll(file.fh, part)
        }
        await writeAll(file.fh, chunk)
      })
      if (file.fh === null) {
        this.#writeSmall(key.jobId, tmp, Buffer.concat(small, held))
        renameSync(tmp, path)
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
      if (source.sourceFailed) throw source.sourceError
      if (opts.signal?.aborted) throw opts.signal.reason
      throw new ContentStoreError('fs', `put ${key.jobId}/${key.index}`, err)
    }
    return source.digest()
  }

  /**
   * A small body (most pages) is written with synchronous calls: on a local disk they take
   * microseconds, where the four threadpool round trips of open, write, close and rename cost more
   * CPU than the rest of the page's fetch (docs/bench-results.md, "Issue 11"). The job's folder
   * is made only when it is missing.
   */
  #writeSmall (jobId: string, tmp: string, data: Buffer): void {
    let fd: number
    try {
      fd = openSync(tmp, 'wx')
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err
      mkdirSync(this.#jobDir(jobId), { recursive: true })
      fd = openSync(tmp, 'wx')
    }
    try {
      for (let offset = 0; offset < data.length;) offset += writeSync(fd, data, offset)
      if (this.#fsync) fsyncSync(fd)
    } finally {
      closeSync(fd)
    }
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
    try {
      const { size } = await fh.stat()
      return { body: fh.createReadStream(), size }
    } catch (err) {
      await fh.close()
      throw new ContentStoreError('fs', `get ${key.jobId}/${key.index}`, err)
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

  // Nothing to release: every file is closed by the operation that opened it.
  async close (): Promise<void> {}
}

/**
 * Hands every chunk to `each`, in a plain loop rather than a stream pipeline (two fewer streams
 * and their ticks per body); an abort ends the wait for a chunk that does not come (an origin
 * that stalls).
 */
async function eachChunk (chunks: AsyncGenerator<Uint8Array>, signal: AbortSignal | undefined, each: (chunk: Buffer) => Promise<void>): Promise<void> {
  signal?.throwIfAborted()
  let stop: Promise<never> | null = null
  let listener: Disposable | null = null
  if (signal) {
    stop = new Promise<never>((_resolve, reject) => { listener = addAbortListener(signal, () => reject(signal.reason)) })
    stop.catch(() => {})
  }
  try {
    for (;;) {
      const next = stop ? await Promise.race([chunks.next(), stop]) : await chunks.next()
      if (next.done === true) return
      await each(next.value as Buffer)
    }
  } catch (err) {
    chunks.return(undefined).catch(() => {})
    throw err
  } finally {
    (listener as Disposable | null)?.[Symbol.dispose]()
  }
}

// write(2) on a regular file may write less than asked (a nearly full disk): go on from there.
async function writeAll (fh: FileHandle, chunk: Buffer): Promise<void> {
  let offset = 0
  while (offset < chunk.length) {
    const { bytesWritten } = await fh.write(chunk, offset)
    offset += bytesWritten
  }
}
