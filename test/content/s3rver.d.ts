// s3rver ships no types; this is the part of its API the tests use.
declare module 's3rver' {
  import type { AddressInfo } from 'node:net'
  export interface S3rverOptions {
    address?: string
    port?: number
    silent?: boolean
    directory?: string
    resetOnClose?: boolean
    allowMismatchedSignatures?: boolean
    vhostBuckets?: boolean
    configureBuckets?: Array<{ name: string }>
  }
  export interface KoaContext {
    method: string
    url: string
    status: number
    type: string
    body: unknown
  }
  class S3rver {
    constructor (options?: S3rverOptions)
    middleware: Array<(ctx: KoaContext, next: () => Promise<void>) => Promise<void>>
    store: { getResourcePath (bucket: string, key: string | undefined, resource: string): string }
    run (): Promise<AddressInfo>
    close (): Promise<void>
  }
  export default S3rver
}
