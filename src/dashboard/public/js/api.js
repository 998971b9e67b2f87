/* global sessionStorage, window, CustomEvent */
/**
 * The API as the page calls it: same origin, the key (if any) from sessionStorage only, sent as
 * `Authorization: Bearer`. A 401 means a key is needed (the service runs with API_KEYS) or the
 * one given is wrong: the page then asks for one.
 */

const KEY = 'trawl.apiKey'
const JOBS = 'trawl.jobIds'
const MAX_REMEMBERED = 200

export const session = {
  key: () => sessionStorage.getItem(KEY),
  setKey: (key) => sessionStorage.setItem(KEY, key),
  forgetKey: () => sessionStorage.removeItem(KEY),
  /** Ids of the jobs this tab submitted, newest first: the list when GET /jobs is not there. */
  jobIds () {
    try {
      const ids = JSON.parse(sessionStorage.getItem(JOBS) ?? '[]')
      return Array.isArray(ids) ? ids.filter((id) => typeof id === 'string') : []
    } catch {
      return []
    }
  },
  rememberJob (id) {
    const ids = [id, ...session.jobIds().filter((x) => x !== id)].slice(0, MAX_REMEMBERED)
    sessionStorage.setItem(JOBS, JSON.stringify(ids))
  },
  forgetJob (id) {
    sessionStorage.setItem(JOBS, JSON.stringify(session.jobIds().filter((x) => x !== id)))
  }
}

/** The server wants a (valid) key. */
export class AuthRequired extends Error {}

/** A problem answer: `status`, `code`, `message` (its detail) and, for 400, `errors`. */
export class ApiError extends Error {
  constructor (status, problem) {
    super(problem?.detail ?? `HTTP ${status}`)
    this.status = status
    this.code = problem?.code ?? null
    this.errors = problem?.errors
  }
}

async function problemOf (res) {
  try {
    return await res.json()
  } catch {
    return null
  }
}

/** fetch() with the key; throws AuthRequired on 401 and tells the page to ask for a key. */
export async function call (path, init = {}) {
  const headers = new Headers(init.headers)
  const key = session.key()
  if (key) headers.set('authorization', `Bearer ${key}`)
  const res = await fetch(path, { ...init, headers, cache: 'no-store' })
  if (res.status === 401) {
    const problem = await problemOf(res)
    const message = key ? 'The server refused this key; enter another.' : 'This server needs an API key.'
    window.dispatchEvent(new CustomEvent('trawl:auth', { detail: message }))
    throw new AuthRequired(problem?.detail ?? message)
  }
  return res
}

/** A JSON call: the parsed body of a 2xx answer, or ApiError with the problem. */
export async function json (path, init = {}) {
  const res = await call(path, init)
  if (!res.ok) throw new ApiError(res.status, await problemOf(res))
  return res.json()
}

/** True when the server runs without keys, as far as this tab has seen. */
export function isOpen () {
  return !session.key()
}
