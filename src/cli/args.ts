import { readFile } from 'node:fs/promises'
import { InvalidArgumentError } from 'commander'
import { UsageError } from './errors.js'
import type { SubmitRequest } from './http.js'

/** The default server, when neither `--server` nor `TRAWL_SERVER` says otherwise. */
export const DEFAULT_SERVER = 'http://127.0.0.1:3000'

/** A commander parser for a whole number at least `min`. */
export function integer (min: number): (value: string) => number {
  return (value) => {
    if (!/^\d+$/.test(value.trim()) || Number(value) < min) {
      throw new InvalidArgumentError(`expected a whole number${min > 0 ? ` of at least ${min}` : ''}`)
    }
    return Number(value)
  }
}

const SIZE_UNITS: Record<string, number> = { '': 1, k: 1024, m: 1024 ** 2, g: 1024 ** 3 }

/** A byte count: `1048576`, `512k`, `10M`, `1G` (binary units). */
export function byteSize (value: string): number {
  const match = /^(\d+)\s*([kmg]?)i?b?$/i.exec(value.trim())
  const unit = SIZE_UNITS[match?.[2]?.toLowerCase() ?? '']
  if (!match || unit === undefined || Number(match[1]) < 1) throw new InvalidArgumentError('expected a size such as 1048576, 512k or 10M')
  return Number(match[1]) * unit
}

/** `--server`: an absolute http(s) URL. */
export function serverUrl (value: string): URL {
  let url: URL
  try {
    url = new URL(value)
  } catch {
    throw new UsageError(`--server ${JSON.stringify(value)} is not an absolute URL`)
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') throw new UsageError(`--server must be an http or https URL, not ${url.protocol}`)
  return url
}

/** The lines of a URL list: one URL a line; blank lines and lines starting with `#` are skipped. */
export function parseUrlList (text: string): string[] {
  return text.split(/\r?\n/).map((line) => line.trim()).filter((line) => line !== '' && !line.startsWith('#'))
}

/** Reads `-f FILE` (`-` is stdin). */
export async function readUrlFile (path: string, stdin: NodeJS.ReadableStream): Promise<string[]> {
  try {
    if (path === '-') {
      const chunks: Buffer[] = []
      for await (const chunk of stdin) chunks.push(typeof chunk === 'string' ? Buffer.from(chunk) : chunk)
      return parseUrlList(Buffer.concat(chunks).toString('utf8'))
    }
    return parseUrlList(await readFile(path, 'utf8'))
  } catch (err) {
    throw new UsageError(`cannot read ${path === '-' ? 'stdin' : path}: ${err instanceof Error ? err.message : String(err)}`, { cause: err })
  }
}

/**
 * The URLs must at least be absolute http(s) URLs; the server checks the rest (length, count)
 * and answers a problem for what it refuses.
 */
export function checkUrls (urls: readonly string[]): void {
  if (urls.length === 0) throw new UsageError('no URLs given: name them as arguments or with -f FILE')
  for (const url of urls) {
    let parsed: URL | null = null
    try {
      parsed = new URL(url)
    } catch {}
    if (parsed === null || (parsed.protocol !== 'http:' && parsed.protocol !== 'https:')) {
      throw new UsageError(`not an http or https URL: ${JSON.stringify(url)}`)
    }
  }
}

/** The options of `trawl get` as commander hands them over. */
export interface GetFlags {
  file?: string
  server: string
  apiKey?: string
  concurrency?: number
  timeout?: number
  retries?: number
  maxBytes?: number
  keepContent: boolean
  output?: string
  /** With -o: bodies downloaded at once (save.ts DEFAULT_PARALLEL when not given). */
  parallel?: number
  json?: boolean
}

/** Maps the flags onto job options, sending only what was given so the server's defaults apply. */
export function jobOptionsOf (flags: GetFlags): SubmitRequest['options'] {
  const options: SubmitRequest['options'] = {}
  if (flags.concurrency !== undefined) options.concurrency = flags.concurrency
  if (flags.timeout !== undefined) options.timeoutMs = flags.timeout
  if (flags.retries !== undefined) options.retries = flags.retries
  if (flags.maxBytes !== undefined) options.maxBytes = flags.maxBytes
  if (!flags.keepContent) options.keepContent = false
  return options
}
