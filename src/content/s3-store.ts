import {
  AbortMultipartUploadCommand, DeleteObjectsCommand, GetObjectCommand, ListMultipartUploadsCommand,
  ListObjectsV2Command, S3Client
} from '@aws-sdk/client-s3'
import type { S3ClientConfig } from '@aws-sdk/client-s3'
import { Upload } from '@aws-sdk/lib-storage'
import { PassThrough, Readable } from 'node:stream'
import { pipeline } from 'node:stream/promises'
import { Digesting } from './digest.js'
import { checkJobId, checkKey, ContentStoreError } from './store.js'
import type { ContentBody, ContentKey, ContentMeta, ContentStore, PutOptions, PutResult, StoredBody } from './store.js'

export interface S3ContentStoreOptions {
  /** The bucket (`S3_BUCKET`); it must exist. */
  bucket: string
  /** Key prefix (`S3_PREFIX`, default the `REDIS_PREFIX`); bodies are `<prefix>/<jobId>/<index>`. */
  prefix: string
  /** Endpoint of an S3-compatible service (`S3_ENDPOINT`), e.g. `http://minio:9000`; unset: AWS. */
  endpoint?: string
  /** `S3_REGION`. @defaultValue us-east-1 */
  region: string
  /** Bucket in the path rather than the host name, as MinIO and most others need (`S3_FORCE_PATH_STYLE`). */
  forcePathStyle: boolean
  /** Credentials; unset, the AWS SDK's standard chain (`AWS_ACCESS_KEY_ID`, profiles, roles, ...). */
  credentials?: S3ClientConfig['credentials']
  /** A client to use instead of one the store makes (and then does not destroy on close). */
  client?: S3Client
  /**
   * Bytes per multipart part, also the largest body sent with one PutObject. Each put in flight
   * holds one part in memory. @defaultValue 5 MiB (S3's smallest part)
   */
  partSize?: number
}

const MIB = 1024 * 1024

/**
 * Bodies as objects `<prefix>/<jobId>/<index>` in one bucket, through the AWS SDK v3: a body up
 * to `partSize` goes in one PutObject, a larger one in a multipart upload (lib-storage's Upload,
 * one part in flight), which S3 makes visible only when it completes. The object's
 * `Content-Type` is the body's; the sha256 lives in the result in Redis.
 */
export function createS3ContentStore (options: S3ContentStoreOptions): ContentStore {
  return new S3ContentStore(options)
}

class S3ContentStore implements ContentStore {
  readonly kind = 's3'
  readonly #client: S3Client
  readonly #owned: boolean
  readonly #bucket: string
  readonly #base: string
  readonly #partSize: number
  #closed = false

  constructor (options: S3ContentStoreOptions) {
    this.#client = options.client ?? new S3Client({
      region: options.region,
      forcePathStyle: options.forcePathStyle,
      ...(options.endpoint !== undefined ? { endpoint: options.endpoint } : {}),
      ...(options.credentials !== undefined ? { credentials: options.credentials } : {}),
      // Many S3-compatible services reject the newer default checksum headers and trailers;
      // the sha256 trawl computes is its integrity check.
      requestChecksumCalculation: 'WHEN_REQUIRED',
      responseChecksumValidation: 'WHEN_REQUIRED'
    })
    this.#owned = options.client === undefined
    this.#bucket = options.bucket
    this.#base = options.prefix.replace(/\/+$/, '')
    this.#partSize = Math.max(5 * MIB, options.partSize ?? 5 * MIB)
  }

  #jobPrefix (jobId: string): string {
    return `${this.#base === '' ? '' : `${this.#base}/`}${jobId}/`
  }

  #keyOf (key: ContentKey): string {
    checkKey(key)
    return `${this.#jobPrefix(key.jobId)}${key.index}`
  }

  async put (key: ContentKey, body: ContentBody, meta: ContentMeta, opts: PutOptions = {}): Promise<PutResult> {
    const Key = this.#keyOf(key)
    const source = new Digesting(body)
    // The body reaches Upload through a PassThrough that an abort or a body error destroys at
    // once, so that Upload itself aborts its multipart upload before done() rejects (its own
    // abortController would reject first and clean up later). The pipeline's promise is not
    // awaited: a body stalled in a read ends only when its owner destroys it.
    const stream = new PassThrough()
    pipeline(Readable.from(source.chunks(), { objectMode: false }), stream, opts.signal ? { signal: opts.signal } : {}).catch(() => {})
    const upload = new Upload({
      client: this.#client,
      params: { Bucket: this.#bucket, Key, Body: stream, ...(meta.contentType ? { ContentType: meta.contentType } : {}) },
      queueSize: 1,
      partSize: this.#partSize,
      leavePartsOnError: false
    })
    try {
      await upload.done()
    } catch (err) {
      stream.destroy()
      if (source.sourceFailed) throw source.sourceError
      if (opts.signal?.aborted) throw opts.signal.reason
      throw new ContentStoreError('s3', `put ${Key}`, err)
    }
    return source.digest()
  }

  async get (key: ContentKey): Promise<StoredBody | null> {
    const Key = this.#keyOf(key)
    try {
      const res = await this.#client.send(new GetObjectCommand({ Bucket: this.#bucket, Key }))
      return { body: res.Body as Readable, size: res.ContentLength ?? 0 }
    } catch (err) {
      if (isNotFound(err)) return null
      throw new ContentStoreError('s3', `get ${Key}`, err)
    }
  }

  async deleteJob (jobId: string): Promise<void> {
    checkJobId(jobId)
    const Prefix = this.#jobPrefix(jobId)
    try {
      await deleteObjects(this.#client, this.#bucket, Prefix)
      await abortUploads(this.#client, this.#bucket, Prefix)
    } catch (err) {
      throw new ContentStoreError('s3', `delete ${Prefix}`, err)
    }
  }

  async close (): Promise<void> {
    if (this.#closed) return
    this.#closed = true
    if (this.#owned) this.#client.destroy()
  }
}

/** Deletes every object under a prefix, a listing page (at most 1,000) per DeleteObjects. */
async function deleteObjects (client: S3Client, Bucket: string, Prefix: string): Promise<void> {
  let ContinuationToken: string | undefined
  do {
    const page = await client.send(new ListObjectsV2Command({ Bucket, Prefix, ContinuationToken }))
    const Objects = (page.Contents ?? []).flatMap((o) => o.Key === undefined ? [] : [{ Key: o.Key }])
    if (Objects.length > 0) {
      const res = await client.send(new DeleteObjectsCommand({ Bucket, Delete: { Objects, Quiet: true } }))
      const failed = res.Errors?.[0]
      if (failed) throw new Error(`${res.Errors?.length ?? 1} objects not deleted, e.g. ${failed.Key}: ${failed.Code} ${failed.Message}`)
    }
    ContinuationToken = page.IsTruncated ? page.NextContinuationToken : undefined
  } while (ContinuationToken !== undefined)
}

/**
 * Aborts the multipart uploads a killed worker left under a prefix (invisible, but stored and
 * billed). A service without ListMultipartUploads is left to its own lifecycle rules.
 */
async function abortUploads (client: S3Client, Bucket: string, Prefix: string): Promise<void> {
  let KeyMarker: string | undefined
  let UploadIdMarker: string | undefined
  for (;;) {
    let page
    try {
      page = await client.send(new ListMultipartUploadsCommand({ Bucket, Prefix, KeyMarker, UploadIdMarker }))
    } catch (err) {
      if ((err as { name?: unknown }).name === 'NotImplemented') return
      throw err
    }
    for (const u of page.Uploads ?? []) {
      if (u.Key === undefined || u.UploadId === undefined) continue
      await client.send(new AbortMultipartUploadCommand({ Bucket, Key: u.Key, UploadId: u.UploadId })).catch((err: unknown) => {
        if (!isNotFound(err)) throw err
      })
    }
    if (!page.IsTruncated) return
    KeyMarker = page.NextKeyMarker
    UploadIdMarker = page.NextUploadIdMarker
  }
}

function isNotFound (err: unknown): boolean {
  const e = err as { name?: unknown, $metadata?: { httpStatusCode?: number } }
  if (e.name === 'NoSuchKey' || e.name === 'NotFound' || e.name === 'NoSuchUpload') return true
  // A missing bucket is a misconfigured store, not a missing body.
  return e.$metadata?.httpStatusCode === 404 && e.name !== 'NoSuchBucket'
}
