/**
 * File names for bodies: the archive's entry names and (once `src/cli/save.ts` imports this)
 * the names `trawl get -o` writes, so both give a user the same files. The rules are save.ts's
 * `fileNameFor`, moved here unchanged.
 */

const EXTENSIONS: Record<string, string> = {
  'text/html': '.html',
  'application/xhtml+xml': '.html',
  'text/plain': '.txt',
  'text/css': '.css',
  'text/csv': '.csv',
  'text/javascript': '.js',
  'application/javascript': '.js',
  'application/json': '.json',
  'application/xml': '.xml',
  'text/xml': '.xml',
  'application/pdf': '.pdf',
  'image/png': '.png',
  'image/jpeg': '.jpg',
  'image/gif': '.gif',
  'image/svg+xml': '.svg',
  'image/webp': '.webp'
}

/** Longest slug taken from a URL, in characters. */
export const MAX_SLUG = 120

/**
 * Host and path (and query) of a URL as a name safe on any file system: every run of
 * characters other than `A-Za-z0-9._` becomes `-`, no `..`, no leading or trailing `-`/`.`,
 * at most MAX_SLUG characters. Empty for a URL with nothing usable.
 */
export function safeSlug (url: string): string {
  let slug: string
  try {
    const parsed = new URL(url)
    let path = parsed.pathname + parsed.search
    try {
      path = decodeURIComponent(path)
    } catch {}
    slug = parsed.hostname + path
  } catch {
    slug = url
  }
  return slug.replace(/[^A-Za-z0-9._]+/g, '-').replace(/\.{2,}/g, '.').replace(/^[-.]+|[-.]+$/g, '').slice(0, MAX_SLUG).replace(/[-.]+$/, '')
}

/**
 * The name of one result's body: the index zero-padded to the width of the job's largest index
 * (at least 3 digits, so names sort in input order and are unique within the job), the slug,
 * and an extension from the content type, e.g. `000-en.wikipedia.org-wiki-PHP.html`.
 */
export function bodyFileName (index: number, total: number, url: string, contentType: string | null): string {
  const width = Math.max(3, String(Math.max(0, total - 1)).length)
  const slug = safeSlug(url)
  const mime = (contentType ?? '').split(';')[0]?.trim().toLowerCase() ?? ''
  const ext = EXTENSIONS[mime] ?? ''
  const name = `${String(index).padStart(width, '0')}${slug ? `-${slug}` : ''}`
  return name.toLowerCase().endsWith(ext) ? name : name + ext
}
