import type { ContentStore } from '../content/store.js'
import type { Metrics } from './metrics.js'

/**
 * The content store, timing each operation into `trawl_content_store_*` (Metrics.contentOp): a
 * put until the body is stored whole, a get until the body is open (not read), a deleteJob
 * until the job's bodies are gone. A rejection counts as `error`, a get of no body as
 * `not_found`. Wrapped in each role (content/service.ts), so `trawl all`'s shared store is timed
 * once per operation, whichever role made it.
 */
export function meteredContent (store: ContentStore, metrics: Pick<Metrics, 'timeContentOp'>): ContentStore {
  return {
    kind: store.kind,
    put: async (key, body, meta, options) => await metrics.timeContentOp('put', () => store.put(key, body, meta, options)),
    get: async (key) => await metrics.timeContentOp('get', () => store.get(key), (found) => (found === null ? 'not_found' : 'success')),
    deleteJob: async (jobId) => { await metrics.timeContentOp('delete', () => store.deleteJob(jobId)) },
    close: async () => { await store.close() }
  }
}
