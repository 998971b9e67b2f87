import type { Readable } from 'node:stream'

/**
 * The content store: where the bodies trawl downloads live, outside Redis. One interface, two
 * backends (`fs-store.ts`, `s3-store.ts`); `index.ts` picks one from the config.
 *
 * What the store keeps: the bytes of each body, under its key, and nothing else that a reader
 * relies on. The result item in Redis is the record of a body: its `bytes`, `sha256` and
 * `contentType` are written there once `put` has returned, and that write is the commit point.
 * A body in the store with no result that names it (a worker killed after `put`, before its
 * step) is an orphan that `deleteJob` removes with the job. The s3 store also sets the object's
 * `Content-Type` (it is known before the first byte and costs nothing); the fs store keeps
 * none, since a sidecar file could not be renamed into place atomically with the body.
 */
export interface ContentStore {
  /** `fs` or `s3`, for logs and metrics. */
  readonly kind: 'fs' | 's3'

  /**
   * Streams `body` into the store under `key`, hashing it on the way, and returns its size and
   * sha256 once it is stored whole.
   *
   * - Memory: the body is read as the store writes it (back-pressure), never held whole. The
   *   fs store holds one chunk at a time; the s3 store holds one multipart part (`partSize`,
   *   5 MiB by default) per put in flight.
   * - Visibility: the body is invisible to `get` until it is complete, then appears at once
   *   (fs: a temporary name in the job's folder, renamed into place; s3: a single PutObject
   *   below `partSize`, else a multipart upload, which S3 makes visible only on completion).
   *   A put over an existing key replaces it atomically: a reader sees the old or the new body.
   * - Failure: when the store fails, when `body` throws, or when `signal` aborts, nothing
   *   becomes visible and the temporary file or multipart upload is removed before the promise
   *   rejects. It rejects with the body's own error if the body failed (so the caller can tell
   *   a network fault from a storage fault), with `signal.reason` if aborted, and otherwise with
   *   a ContentStoreError.
   * - Crash: a process killed mid-put leaves a temporary file (fs, `.tmp-*`, never a key's
   *   name) or an incomplete multipart upload (s3), never a visible partial body; `deleteJob`
   *   removes both with the job.
   */
  put (key: ContentKey, body: ContentBody, meta: ContentMeta, options?: PutOptions): Promise<PutResult>

  /**
   * Opens the body stored under `key` for reading, or null when there is none. The stream
   * reads the body as it was when `get` was called, even if it is replaced or deleted while
   * it is read (fs: an open file; s3: one GET). The caller must consume or destroy `body`.
   * Integrity is the reader's to check against the result's sha256 (`verifyingStream`).
   * Rejects with ContentStoreError when the store fails.
   */
  get (key: ContentKey): Promise<StoredBody | null>

  /**
   * Removes every body of one job, temporary and orphaned ones included, and resolves once
   * they are gone; bodies of other jobs are untouched. Idempotent: a job with no bodies is a
   * no-op. Not atomic: a get racing it may still open a body. A put racing it may leave its
   * body behind, so the caller stops the job's puts (cancel) before calling it.
   * Rejects with ContentStoreError when the store fails (some bodies may be gone by then;
   * calling again finishes the work).
   */
  deleteJob (jobId: string): Promise<void>

  /** Releases the store's clients. Safe to call twice; the store is unusable afterwards. */
  close (): Promise<void>
}

/** A body to store: a stream, or chunks from a generator (or an array, in tests). */
export type ContentBody = AsyncIterable<Uint8Array> | Iterable<Uint8Array> | Readable

/** Which body: one URL (`index`) of one job. */
export interface ContentKey {
  /** The job's id: letters, digits, `_` and `-` only (it becomes a folder or key segment). */
  jobId: string
  /** The URL's index in the job, a non-negative integer. */
  index: number
}

export interface ContentMeta {
  /** The `Content-Type` the body came with, null when it came with none. */
  contentType: string | null
}

export interface PutOptions {
  /** Aborts the put: nothing becomes visible and the promise rejects with the signal's reason. */
  signal?: AbortSignal
}

export interface PutResult {
  /** Bytes stored. */
  bytes: number
  /** Hex sha256 of the bytes stored. */
  sha256: string
}

export interface StoredBody {
  body: Readable
  /** Bytes of the stored body. */
  size: number
  /**
   * The same bytes as `body`, when the store read them in one go (fs: bodies up to 256 KiB),
   * so that a caller can send them as one buffer instead of through the stream. `body` then
   * holds nothing open and needs no destroy.
   */
  whole?: Buffer
}

/**
 * A store that failed. The message names the store, the operation and the store's own error,
 * never a credential or a signed URL, so it can go into a result's `STORAGE_FAILED` message.
 */
export class ContentStoreError extends Error {
  override readonly name = 'ContentStoreError'
  readonly code = 'STORAGE_FAILED'

  constructor (readonly store: 'fs' | 's3', readonly op: string, cause: unknown) {
    super(`${store} content store: ${op} failed: ${describe(cause)}`, { cause })
  }
}

/** The store's error in words, with anything that looks like a credential cut out. */
export function describe (err: unknown): string {
  let text: string
  if (err instanceof Error) {
    const code = (err as { code?: unknown }).code
    const name = typeof code === 'string' ? code : err.name
    text = name && name !== 'Error' && !err.message.startsWith(name) ? `${name}: ${err.message}` : err.message
  } else {
    text = String(err)
  }
  return text
    .replace(/X-Amz-(Credential|Signature|Security-Token)=[^&\s"']+/gi, 'X-Amz-$1=***')
    .replace(/\b(Credential|Signature|SessionToken)=[^,&\s"']+/g, '$1=***')
    .replace(/\b(AKIA|ASIA)[0-9A-Z]{12,}\b/g, '***')
    .replace(/(https?:\/\/)[^/\s@]+@/g, '$1***@')
    // Signed URLs carry their signature in the query: drop every query string.
    .replace(/(https?:\/\/[^\s?"']+)\?[^\s"']*/g, '$1?***')
    .slice(0, 500)
}

const JOB_ID = /^[A-Za-z0-9_-]{1,128}$/

/** Throws a TypeError for a key that could leave its job's folder or prefix. */
export function checkKey (key: ContentKey): void {
  if (!JOB_ID.test(key.jobId)) throw new TypeError(`not a job id: ${JSON.stringify(key.jobId)}`)
  if (!Number.isSafeInteger(key.index) || key.index < 0) throw new TypeError(`not a result index: ${key.index}`)
}

/** Throws a TypeError for a job id that could leave its folder or prefix. */
export function checkJobId (jobId: string): void {
  if (!JOB_ID.test(jobId)) throw new TypeError(`not a job id: ${JSON.stringify(jobId)}`)
}
