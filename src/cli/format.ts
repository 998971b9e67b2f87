import type { JobSummary, ResultItem } from './documents.js'

/** One line per finished URL, like the seed's `Read <bytes> from <url>`. */
export function resultLine (item: ResultItem): string {
  if (item.state === 'succeeded') {
    const ms = item.durationMs === null ? '' : `, ${item.durationMs} ms`
    return `Read ${item.bytes} from ${item.url} (${item.status ?? '-'}${ms})`
  }
  const error = item.error ?? { code: item.state.toUpperCase(), message: '' }
  return `Failed ${item.url}: ${error.code} ${error.message}`.trimEnd()
}

/** `Downloaded 15 URLs in 0.41 s: 14 succeeded, 1 failed` (and `, 2 cancelled` when there are any). */
export function summaryLine (job: JobSummary): string {
  const { succeeded, failed, cancelled } = job.counts
  const parts = [`${succeeded} succeeded`, `${failed} failed`]
  if (cancelled > 0) parts.push(`${cancelled} cancelled`)
  return `Downloaded ${job.total} URL${job.total === 1 ? '' : 's'} in ${seconds(durationOf(job))}: ${parts.join(', ')}`
}

/** `trawl status`: the state and every count on one line. */
export function statusLine (job: JobSummary): string {
  const c = job.counts
  const done = c.succeeded + c.failed + c.cancelled
  const time = durationOf(job)
  return `Job ${job.id} is ${job.state}: ${done}/${job.total} done (${c.succeeded} succeeded, ${c.failed} failed, ` +
    `${c.cancelled} cancelled, ${c.running} running, ${c.pending} pending), ${formatBytes(job.bytes)}` +
    (time > 0 ? ` in ${seconds(time)}` : '')
}

/** The job's own running time: the server's `durationMs`, else from its timestamps. */
export function durationOf (job: JobSummary): number {
  if (job.durationMs !== null) return job.durationMs
  if (job.finishedAt === null || job.startedAt === null) return 0
  return Math.max(0, Date.parse(job.finishedAt) - Date.parse(job.startedAt))
}

export function seconds (ms: number): string {
  return `${(ms / 1000).toFixed(2)} s`
}

/** Decimal units, as the seed counts its 3.1 MB. */
export function formatBytes (n: number): string {
  if (n < 1000) return `${n} B`
  const units = ['kB', 'MB', 'GB', 'TB']
  let value = n
  let unit = 'B'
  for (const next of units) {
    if (value < 1000) break
    value /= 1000
    unit = next
  }
  return `${value.toFixed(value < 10 ? 2 : 1)} ${unit}`
}
