import t from 'tap'
import { z } from 'zod'
import { checkContentConfig, contentConfigShape, contentStoreOptions } from '../../src/content/config.js'

// As src/config.ts will merge it: the shape into its object, the rule into its superRefine.
const schema = z.object({ REDIS_PREFIX: z.string().default('trawl'), ...contentConfigShape }).superRefine(checkContentConfig)

t.test('defaults: the fs store under ./data/content', async (t) => {
  t.same(contentStoreOptions(schema.parse({})), { store: 'fs', dir: './data/content' })
})

t.test('s3 with an endpoint: path style by default, prefix from REDIS_PREFIX', async (t) => {
  const rows = schema.parse({ CONTENT_STORE: 's3', S3_BUCKET: 'trawl', S3_ENDPOINT: 'http://minio:9000', REDIS_PREFIX: 'prod' })
  t.same(contentStoreOptions(rows), { store: 's3', bucket: 'trawl', prefix: 'prod', endpoint: 'http://minio:9000', region: 'us-east-1', forcePathStyle: true })
})

t.test('s3 on AWS: virtual-host style unless asked, own prefix', async (t) => {
  t.same(contentStoreOptions(schema.parse({ CONTENT_STORE: 's3', S3_BUCKET: 'trawl', S3_PREFIX: 'bodies', S3_REGION: 'eu-west-1' })),
    { store: 's3', bucket: 'trawl', prefix: 'bodies', region: 'eu-west-1', forcePathStyle: false })
  t.equal((contentStoreOptions(schema.parse({ CONTENT_STORE: 's3', S3_BUCKET: 'trawl', S3_FORCE_PATH_STYLE: 'true' })) as { forcePathStyle: boolean }).forcePathStyle, true)
})

t.test('bad rows are named', async (t) => {
  const issues = (env: Record<string, string>): string[] => {
    const r = schema.safeParse(env)
    return r.success ? [] : r.error.issues.map((i) => i.path.join('.'))
  }
  t.same(issues({ CONTENT_STORE: 's3' }), ['S3_BUCKET'])
  t.same(issues({ CONTENT_STORE: 'disk' }), ['CONTENT_STORE'])
  t.same(issues({ S3_ENDPOINT: 'not a url' }), ['S3_ENDPOINT'])
  t.same(issues({ S3_FORCE_PATH_STYLE: 'yes' }), ['S3_FORCE_PATH_STYLE'])
})
