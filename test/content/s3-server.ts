import { readdir, readFile, rm } from 'node:fs/promises'
import { mkdtemp } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import S3rver from 's3rver'
import type { KoaContext } from 's3rver'
import type { Test } from 'tap'

/** The keys s3rver checks signatures against (its defaults). */
export const S3RVER_CREDENTIALS = { accessKeyId: 'S3RVER', secretAccessKey: 'S3RVER' }

/**
 * A real S3-compatible server (s3rver, in this process) on 127.0.0.1, a free port, with its
 * data in a temp folder; closed (`stop`, or when the test ends) and removed when the test ends. s3rver lacks two operations
 * the store uses, ListMultipartUploads and AbortMultipartUpload: they are added here over
 * s3rver's own upload folders, so an upload left behind is seen on its real storage.
 */
export async function startS3 (t: Test): Promise<{ endpoint: string, directory: string, stop: () => Promise<void> }> {
  const directory = await mkdtemp(join(tmpdir(), 'trawl-s3rver-'))
  const server = new S3rver({ address: '127.0.0.1', port: 0, silent: true, directory, vhostBuckets: false })
  server.middleware.unshift(async (ctx, next) => {
    if (!await multipartShim(server, ctx)) await next()
  })
  const address = await server.run()
  let closed: Promise<void> | undefined
  const stop = (): Promise<void> => (closed ??= server.close().then(() => {}))
  t.teardown(async () => {
    await stop()
    await rm(directory, { recursive: true, force: true })
  })
  return { endpoint: `http://127.0.0.1:${address.port}`, directory, stop }
}

async function multipartShim (server: S3rver, ctx: KoaContext): Promise<boolean> {
  const url = new URL(ctx.url, 'http://s3')
  const [bucket, ...rest] = url.pathname.slice(1).split('/').map(decodeURIComponent).filter((s, i) => i === 0 || s !== '')
  if (bucket === undefined || bucket === '') return false
  const uploadsDir = server.store.getResourcePath(bucket, undefined, 'uploads')
  if (ctx.method === 'GET' && rest.length === 0 && url.searchParams.has('uploads')) {
    const prefix = url.searchParams.get('prefix') ?? ''
    const ids = await readdir(uploadsDir).catch(() => [] as string[])
    let xml = ''
    for (const id of ids) {
      const key = await readFile(join(uploadsDir, id, 'key'), 'utf8').catch(() => null)
      if (key !== null && key.startsWith(prefix)) xml += `<Upload><Key>${escapeXml(key)}</Key><UploadId>${id}</UploadId></Upload>`
    }
    ctx.type = 'application/xml'
    ctx.body = `<?xml version="1.0" encoding="UTF-8"?><ListMultipartUploadsResult><Bucket>${escapeXml(bucket)}</Bucket><IsTruncated>false</IsTruncated>${xml}</ListMultipartUploadsResult>`
    return true
  }
  const uploadId = url.searchParams.get('uploadId')
  if (ctx.method === 'DELETE' && rest.length > 0 && uploadId !== null && /^[0-9a-f]+$/.test(uploadId)) {
    await rm(join(uploadsDir, uploadId), { recursive: true, force: true })
    ctx.status = 204
    return true
  }
  return false
}

function escapeXml (s: string): string {
  return s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;')
}
