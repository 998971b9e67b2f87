import { createHash, timingSafeEqual } from 'node:crypto'

/**
 * Bearer keys, for tenants' API keys and operators' admin keys alike. A key is kept and compared
 * as its SHA-256 digest, with timingSafeEqual against every entry, so neither the length of a
 * key nor the position of a match shows in the time taken.
 */

/** The SHA-256 digest a key is kept and compared as. */
export const keyDigest = (key: string): Buffer => createHash('sha256').update(key).digest()

/** The token of an `Authorization: Bearer <token>` header; null when there is none. */
export function bearerToken (header: string | undefined): string | null {
  const match = typeof header === 'string' ? /^Bearer\s+(\S+)\s*$/i.exec(header) : null
  return match === null ? null : match[1] as string
}

/** The index of the entry whose digest is `given`'s, compared with every entry; -1 for none. */
export function matchKey (given: string, digests: readonly Buffer[]): number {
  const d = keyDigest(given)
  let found = -1
  digests.forEach((entry, i) => { if (timingSafeEqual(d, entry) && found === -1) found = i })
  return found
}
