import { z } from 'zod'

/**
 * The content store's rows of the environment schema, for `src/config.ts` (the only reader of
 * process.env) to merge into its own: `configSchema.extend(contentConfigShape)` and then
 * `.superRefine(checkContentConfig)`; `contentStoreOptions(config)` turns the parsed rows into
 * the options of `createContentStore`.
 */
export const contentConfigShape = {
  /** Where bodies go: `fs` (files under CONTENT_DIR) or `s3`. @defaultValue fs */
  CONTENT_STORE: z.enum(['fs', 's3']).default('fs'),
  /** The fs store's folder. @defaultValue ./data/content */
  CONTENT_DIR: z.string().min(1).default('./data/content'),
  /** The s3 store's bucket; required with CONTENT_STORE=s3. */
  S3_BUCKET: z.string().regex(/^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$/, 'an S3 bucket name (3-63 of a-z 0-9 . -)').optional(),
  /** Key prefix of the s3 store's objects. @defaultValue the REDIS_PREFIX */
  S3_PREFIX: z.string().regex(/^[A-Za-z0-9_.\-/]*$/, 'letters, digits, _ . - / only').optional(),
  /** Endpoint of an S3-compatible service (MinIO, ...); unset: AWS itself. */
  S3_ENDPOINT: z.string().url().optional(),
  /** @defaultValue us-east-1 */
  S3_REGION: z.string().min(1).default('us-east-1'),
  /** Path-style bucket addressing. @defaultValue true when S3_ENDPOINT is set, else false */
  S3_FORCE_PATH_STYLE: z.enum(['true', 'false', '1', '0']).transform((v) => v === 'true' || v === '1').optional()
}

type ContentRows = z.infer<z.ZodObject<typeof contentConfigShape>>

/** The cross-field rule: the s3 store needs a bucket. Use in the schema's superRefine. */
export function checkContentConfig (rows: ContentRows, ctx: z.RefinementCtx): void {
  if (rows.CONTENT_STORE === 's3' && rows.S3_BUCKET === undefined) {
    ctx.addIssue({ code: 'custom', path: ['S3_BUCKET'], message: 'required when CONTENT_STORE=s3' })
  }
}

/** Options for `createContentStore`, from the parsed rows and the service's REDIS_PREFIX. */
export type ContentStoreConfig =
  | { store: 'fs', dir: string }
  | { store: 's3', bucket: string, prefix: string, endpoint?: string, region: string, forcePathStyle: boolean }

export function contentStoreOptions (rows: ContentRows & { REDIS_PREFIX: string }): ContentStoreConfig {
  if (rows.CONTENT_STORE === 'fs') return { store: 'fs', dir: rows.CONTENT_DIR }
  if (rows.S3_BUCKET === undefined) throw new TypeError('S3_BUCKET is required when CONTENT_STORE=s3')
  return {
    store: 's3',
    bucket: rows.S3_BUCKET,
    prefix: rows.S3_PREFIX ?? rows.REDIS_PREFIX,
    ...(rows.S3_ENDPOINT !== undefined ? { endpoint: rows.S3_ENDPOINT } : {}),
    region: rows.S3_REGION,
    forcePathStyle: rows.S3_FORCE_PATH_STYLE ?? rows.S3_ENDPOINT !== undefined
  }
}
