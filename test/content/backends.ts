import { CreateBucketCommand, ListMultipartUploadsCommand, ListObjectsV2Command, PutObjectCommand, S3Client } from '@aws-sdk/client-s3'
import { createHash } from 'node:crypto'
import { createServer, type ServerResponse } from 'node:http'
import { mkdtemp, readdir, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import type { Test } from 'tap'
import { S3RVER_CREDENTIALS, startS3 } from './s3-server.js'

/**
 * The content store of an end-to-end test, on either backend, driven only through the
 * service's configuration (CONTENT_STORE and its rows), and looked at from outside.
 */
export interface Backend {
  /** Rows for testEnv: where the service keeps bodies, and for child processes the s3 keys. */
  env: Record<string, string>
  /** Everything the backend holds for a job: visible bodies, temporary files, unfinished uploads. */
  holdings(jobId: string): Promise<string[]>
  /** Replaces a stored body behind the service's back. */
  tamper(jobId: string, index: number, bytes: Buffer): Promise<void>
  /** Makes every later write of the job's bodies fail. */
  breakWrites(jobId: string): Promise<void>
}

// The in-process service finds s3rver's keys in the AWS SDK's standard chain, as a deployment would.
process.env.AWS_ACCESS_KEY_ID ??= S3RVER_CREDENTIALS.accessKeyId
process.env.AWS_SECRET_ACCESS_KEY ??= S3RVER_CREDENTIALS.secretAccessKey

export const BACKENDS: Record<'fs' | 's3', (t: Test) => Promise<Backend>> = {
  async fs (t) {
    const dir = await mkdtemp(join(tmpdir(), 'trawl-wired-'))
    t.teardown(() => rm(dir, { recursive: true, force: true }))
    return {
      env: { CONTENT_STORE: 'fs', CONTENT_DIR: dir },
      holdings: async (jobId) => (await readdir(join(dir, jobId)).catch(() => [] as string[])).sort(),
      tamper: (jobId, index, bytes) => writeFile(join(dir, jobId, String(index)), bytes),
      // Running as root, a mode bit stops nothing: a file where the job's folder was does.
      breakWrites: async (jobId) => {
        await rm(join(dir, jobId), { recursive: true, force: true })
        await writeFile(join(dir, jobId), 'not a folder')
      }
    }
  },
  async s3 (t) {
    const s3 = await startS3(t)
    const bucket = `wired-${Math.random().toString(36).slice(2, 10)}`
    const raw = new S3Client({ endpoint: s3.endpoint, region: 'us-east-1', forcePathStyle: true, credentials: S3RVER_CREDENTIALS })
    t.teardown(() => raw.destroy())
    await raw.send(new CreateBucketCommand({ Bucket: bucket }))
    const prefix = 'bodies'
    return {
      env: {
        CONTENT_STORE: 's3',
        S3_BUCKET: bucket,
        S3_ENDPOINT: s3.endpoint,
        S3_PREFIX: prefix,
        AWS_ACCESS_KEY_ID: S3RVER_CREDENTIALS.accessKeyId,
        AWS_SECRET_ACCESS_KEY: S3RVER_CREDENTIALS.secretAccessKey
      },
      holdings: async (jobId) => {
        const Prefix = `${prefix}/${jobId}/`
        const objects = await raw.send(new ListObjectsV2Command({ Bucket: bucket, Prefix }))
        const uploads = await raw.send(new ListMultipartUploadsCommand({ Bucket: bucket, Prefix }))
        return [...(objects.Contents ?? []).map((o) => o.Key ?? '?'), ...(uploads.Uploads ?? []).map((u) => `upload:${u.Key ?? '?'}`)].sort()
      },
      tamper: async (jobId, index, bytes) => {
        await raw.send(new PutObjectCommand({ Bucket: bucket, Key: `${prefix}/${jobId}/${index}`, Body: bytes }))
      },
      breakWrites: async () => { await s3.stop() }
    }
  }
}

/** A body of `size` bytes that differs with `seed`, the same every time. */
export function bodyOf (seed: number, size: number): Buffer {
  const block = createHash('sha512').update(`body ${seed}`).digest()
  const out = Buffer.alloc(size)
  for (let at = 0; at < size; at += block.length) block.copy(out, at)
  return out
}

export const sha256 = (b: Buffer): string => createHash('sha256').update(b).digest('hex')

export interface BodyServer {
  /** `http://127.0.0.1:port/p/<seed>/<size>`: bodyOf(seed, size), as text/plain. */
  url(seed: number, size: number, path?: 'p' | 'half'): string
  /** Resolves once a /half/ request has sent half its body (and stalls). */
  halfSent(): Promise<void>
  close(): Promise<void>
}

/**
 * Pages with known bodies. `/half/<seed>/<size>` sends half the body and then stalls, the first
 * time it is asked for; later requests get the whole body.
 */
export async function startBodyServer (t: Test): Promise<BodyServer> {
  const stalled: ServerResponse[] = []
  let onHalf: (() => void) | null = null
  let halves = 0
  const server = createServer((req, res) => {
    const [, kind, seed, size] = (req.url ?? '').split('/')
    const body = bodyOf(Number(seed), Number(size))
    res.writeHead(200, { 'content-type': 'text/plain', 'content-length': body.length })
    if (kind === 'half' && halves++ === 0) {
      res.write(body.subarray(0, body.length >> 1), () => onHalf?.())
      stalled.push(res)
      return
    }
    res.end(body)
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const address = server.address()
  const port = typeof address === 'object' && address !== null ? address.port : 0
  const close = async (): Promise<void> => {
    for (const res of stalled) res.destroy()
    server.closeAllConnections()
    await new Promise<void>((resolve) => server.close(() => resolve()))
  }
  t.teardown(close)
  return {
    url: (seed, size, path = 'p') => `http://127.0.0.1:${port}/${path}/${seed}/${size}`,
    halfSent: () => new Promise((resolve) => { onHalf = resolve }),
    close
  }
}
