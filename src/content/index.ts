import type { ContentStoreConfig } from './config.js'
import { createFsContentStore } from './fs-store.js'
import { createS3ContentStore } from './s3-store.js'
import type { S3ContentStoreOptions } from './s3-store.js'
import type { ContentStore } from './store.js'

export type { ContentStoreConfig } from './config.js'
export { contentConfigShape, checkContentConfig, contentStoreOptions } from './config.js'
export { createFsContentStore } from './fs-store.js'
export { createS3ContentStore } from './s3-store.js'
export { ContentStoreError } from './store.js'
export type { ContentBody, ContentKey, ContentMeta, ContentStore, PutOptions, PutResult, StoredBody } from './store.js'
export { checkBody, ContentIntegrityError, verifyingStream } from './digest.js'

/**
 * The store the config names. `s3` takes extra options (a client or credentials, for tests);
 * without them the SDK's standard credential chain is used.
 */
export function createContentStore (config: ContentStoreConfig, s3Extra: Partial<Pick<S3ContentStoreOptions, 'client' | 'credentials' | 'partSize'>> = {}): ContentStore {
  if (config.store === 'fs') return createFsContentStore({ dir: config.dir })
  const { store: _store, ...s3 } = config
  return createS3ContentStore({ ...s3, ...s3Extra })
}
