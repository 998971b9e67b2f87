import { ZipArchive } from 'archiver'
import type { Archiver } from 'archiver'
import type { Readable } from 'node:stream'
import { verifyingStream, verifyWhole } from './digest.js'
import { bodyFileName } from './names.js'
import { ndjsonStream } from './ndjson.js'
import type { ContentStore } from './store.js'

/** What the archive needs of a result item; the item itself goes into `results.ndjson` whole. */
export interface ArchiveItem {
  index: number
  url: string
  contentType?: string | null
  /** Present (non-null) when the result has a stored body. */
  sha256?: string | null
  bytes?: number
}

export interface ArchiveSource<T extends ArchiveItem> {
  jobId: string
  /** URLs in the job: sets the width of the zero-padded index in entry names. */
  total: number
  store: ContentStore
  /**
   * The job's result items in input order. Called twice: once for the bodies, once for
   * `results.ndjson` at the end. It should read from Redis page by page, not hold them all.
   */
  items: () => AsyncIterable<T>
}

export interface ArchiveOptions {
  /** zlib level of the entries; 0 stores them as they are (the cheapest for CPU). @defaultValue 0 */
  level?: number
  /** Check each body against its result's sha256 and size while it is archived; a mismatch cuts the archive with an error. @defaultValue true */
  verify?: boolean
  /** Bytes archiver buffers on each side before it holds back (what a slow reader leaves in memory, about twice this). @defaultValue 1048576 */
  highWaterMark?: number
  /** Write ZIP64 records even when not needed. Without it archiver switches to ZIP64 by itself once offsets pass 4 GiB or entries pass 65,535. @defaultValue false */
  forceZip64?: boolean
}

/** The name of the manifest entry. */
export const MANIFEST = 'results.ndjson'

/**
 * A streamed ZIP of a job's stored bodies, one entry per body named by `bodyFileName`, then
 * `results.ndjson`: every result item with `entry` (its entry's name, or null when it has no
 * body in the archive). Bodies are opened one at a time, when the previous entry is written
 * whole; a slow reader pauses the archive, which pauses the store read behind it, so memory
 * stays flat whatever the archive's size. An error (store, integrity, items) destroys the
 * stream with it: an HTTP reply is cut and the client sees a broken ZIP, never a short valid one.
 * Destroying the stream (client gone) stops the work and closes the open body.
 */
export function archiveStream<T extends ArchiveItem> (src: ArchiveSource<T>, options: ArchiveOptions = {}): Readable {
  const level = options.level ?? 0
  const zip = new ZipArchive({
    store: level === 0,
    zlib: { level },
    forceZip64: options.forceZip64 ?? false,
    highWaterMark: options.highWaterMark ?? 1024 * 1024
  })
  fill(zip, src, options.verify ?? true).catch((err: unknown) => {
    if (!zip.destroyed) zip.destroy(err instanceof Error ? err : new Error(String(err)))
  })
  return zip
}

async function fill<T extends ArchiveItem> (zip: Archiver, src: ArchiveSource<T>, verify: boolean): Promise<void> {
  const included = new Set<number>()
  for await (const item of src.items()) {
    if (item.sha256 === undefined || item.sha256 === null) continue
    if (zip.destroyed) return
    const stored = await src.store.get({ jobId: src.jobId, index: item.index })
    if (stored === null) continue // purged or expired since the item was read
    // The reader may have gone while the body was being opened: close it, or it stays open.
    if (zip.destroyed) {
      stored.body.destroy()
      return
    }
    const expected = { sha256: item.sha256, bytes: item.bytes ?? stored.size }
    // A body the store read whole goes in as that buffer, checked at once; else as its stream.
    let body: Readable | Buffer
    if (stored.whole !== undefined) {
      if (verify) verifyWhole(stored.whole, expected)
      body = stored.whole
    } else if (verify) {
      const check = verifyingStream(expected)
      stored.body.on('error', (err) => check.destroy(err))
      body = stored.body.pipe(check)
    } else {
      body = stored.body
    }
    await appendWhole(zip, body, bodyFileName(item.index, src.total, item.url, item.contentType ?? null), () => stored.body.destroy())
    included.add(item.index)
  }
  if (zip.destroyed) return
  const manifest = ndjsonStream(withEntries(src, included))
  await appendWhole(zip, manifest, MANIFEST, () => manifest.destroy())
  await zip.finalize()
}

async function * withEntries<T extends ArchiveItem> (src: ArchiveSource<T>, included: Set<number>): AsyncGenerator<T & { entry: string | null }> {
  for await (const item of src.items()) {
    const entry = included.has(item.index) ? bodyFileName(item.index, src.total, item.url, item.contentType ?? null) : null
    yield { ...item, entry }
  }
}

/** Appends one entry and resolves once archiver has taken it whole, or rejects if the archive fails or closes. */
async function appendWhole (zip: Archiver, body: Readable | Buffer, name: string, release: () => void): Promise<void> {
  await new Promise<void>((resolve, reject) => {
    const cleanup = (): void => {
      zip.off('entry', onEntry)
      zip.off('error', onError)
      zip.off('close', onClose)
      if (!Buffer.isBuffer(body)) body.off('error', onError)
    }
    const onEntry = (entry: { name: string }): void => {
      if (entry.name !== name) return
      cleanup()
      resolve()
    }
    const onError = (err: Error): void => {
      cleanup()
      release()
      reject(err)
    }
    const onClose = (): void => onError(new Error('the archive was closed before it was complete'))
    zip.on('entry', onEntry)
    zip.on('error', onError)
    zip.on('close', onClose)
    if (!Buffer.isBuffer(body)) body.on('error', onError)
    zip.append(body, { name })
  })
}
