import { Agent, request } from 'undici'

export interface BareRun {
  ms: number
  bytes: number
  failures: number
}

/** A keep-alive undici Agent allowed as many connections as the loop has workers. */
export function bareAgent (concurrency: number): Agent {
  return new Agent({ connections: concurrency, keepAliveTimeout: 60_000, keepAliveMaxTimeout: 60_000 })
}

/**
 * The baseline: `concurrency` async workers taking the next URL from a shared index, each GET
 * read to its end (kept in memory when `keep`, as trawl's keepContent does, else counted).
 */
export async function bareLoop (agent: Agent, urls: readonly string[], concurrency: number, keep: boolean): Promise<BareRun> {
  let next = 0
  let bytes = 0
  let failures = 0
  const t0 = performance.now()
  const worker = async (): Promise<void> => {
    while (next < urls.length) {
      const url = urls[next++] as string
      try {
        const res = await request(url, { dispatcher: agent })
        const chunks: Buffer[] = []
        let n = 0
        for await (const chunk of res.body) {
          n += (chunk as Buffer).length
          if (keep) chunks.push(chunk as Buffer)
        }
        if (keep) Buffer.concat(chunks, n)
        bytes += n
        if (res.statusCode !== 200) failures++
      } catch {
        failures++
      }
    }
  }
  await Promise.all(Array.from({ length: Math.min(concurrency, urls.length) }, worker))
  return { ms: performance.now() - t0, bytes, failures }
}
