import { createHmac } from 'node:crypto'
import type { FastifyRequest } from 'fastify'
import { bearerToken, keyDigest, matchKey } from '../http/bearer.js'

/** The cookie the login form sets; scoped to /admin. */
export const ADMIN_COOKIE = 'trawl_admin'

/**
 * The cookie value for a key: HMAC-SHA256 keyed with the admin key over a fixed label. It proves
 * the key was typed without the key itself sitting in the browser's cookie jar or crossing the
 * wire on every request, needs no server-side session (any API replica can check it), and stops
 * working when the key is removed from ADMIN_API_KEYS.
 */
export function sessionToken (key: string): string {
  return createHmac('sha256', key).update('trawl admin session v1').digest('base64url')
}

/** Reads one cookie from a Cookie header; no cookie library needed for one name. */
export function readCookie (header: string | undefined, name: string): string | undefined {
  if (header === undefined) return undefined
  for (const part of header.split(';')) {
    const eq = part.indexOf('=')
    if (eq > 0 && part.slice(0, eq).trim() === name) return part.slice(eq + 1).trim()
  }
  return undefined
}

export interface AdminGate {
  /** True when `given` is one of the admin keys (compared as digests, timing-safe, against all). */
  isKey (given: string): boolean
  /** True when the request carries `Authorization: Bearer <admin key>` or a valid session cookie. */
  allows (request: FastifyRequest): boolean
}

/**
 * Admin credentials: operators' keys (ADMIN_API_KEYS), apart from tenants' API keys. Every
 * comparison runs against every entry with timingSafeEqual on fixed-length digests, so neither
 * the length nor the position of a match shows in the time taken.
 */
export function createAdminGate (keys: readonly string[]): AdminGate {
  const keyDigests = keys.map(keyDigest)
  const tokenDigests = keys.map((k) => keyDigest(sessionToken(k)))
  const matchesAny = (table: Buffer[], given: string): boolean => matchKey(given, table) !== -1
  return {
    isKey: (given) => matchesAny(keyDigests, given),
    allows (request) {
      const bearer = bearerToken(request.headers.authorization)
      if (bearer !== null) return matchesAny(keyDigests, bearer)
      const cookie = readCookie(request.headers.cookie, ADMIN_COOKIE)
      return cookie !== undefined && matchesAny(tokenDigests, cookie)
    }
  }
}
