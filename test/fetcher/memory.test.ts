import t from 'tap'
import { createDispatcher } from '../../src/fetcher/agent.js'
import { fetchPage } from '../../src/fetcher/fetch-page.js'
import type { FetchOptions } from '../../src/fetcher/fetch-page.js'
import { createAddressGuard } from '../../src/fetcher/guard.js'
import { startTargetServer } from '../helpers/target-server.js'

// In a file of its own so that tap runs it in a process of its own, whose memory it measures.

const MiB = 1024 * 1024

t.test('without a sink: 50 bodies of 20 MB stream through in flat memory', async (t) => {
  const target = await startTargetServer(t)
  const agent = createDispatcher({ guard: createAddressGuard(['127.0.0.0/8']) })
  t.teardown(() => agent.destroy())
  const opts: FetchOptions = { timeoutMs: 20_000, maxBytes: 32 * MiB, maxRedirects: 0, headers: {}, retries: 0 }
  const size = 20 * MiB
  const never = new AbortController().signal

  // Warm up: the server's cached 20 MB body and the first connections are not the client's growth.
  await fetchPage(agent, target.url(`/bytes?n=${size}`), opts, never)
  const used = (): number => { const m = process.memoryUsage(); return m.heapUsed + m.arrayBuffers }
  const base = used()
  let peak = base
  const sampler = setInterval(() => { peak = Math.max(peak, used()) }, 5)

  let total = 0
  const concurrency = 10
  await Promise.all(Array.from({ length: concurrency }, async (_, lane) => {
    for (let i = lane; i < 50; i += concurrency) {
      const r = await fetchPage(agent, target.url(`/bytes?n=${size}${i % 2 === 0 ? '&chunked=1' : ''}`), opts, never)
      t.equal(r.ok, true)
      t.equal(r.sha256, null)
      total += r.bytes
    }
  }))
  clearInterval(sampler)
  peak = Math.max(peak, used())

  t.equal(total, 50 * size, '1 GB counted')
  // Buffering would keep 10 bodies (200 MiB) alive at once. Streaming keeps a few socket buffers
  // per download alive; the rest is garbage that V8 collects once external memory grows by
  // about 64 MiB, hence the margin.
  t.ok(peak - base < 128 * MiB, `peak growth ${((peak - base) / MiB).toFixed(1)} MiB`)
})
