/**
 * Host names and the Redis keys of one host. Every key of a host carries `{<host>}` as its
 * Cluster hash tag, so one host's keys share a slot, and no job key (tagged `{<job id>}`) ever
 * shares a script with them.
 */

/** The host a URL counts against: its host name, lower-cased (the port does not matter). */
export function hostOf (url: string | URL): string {
  return (typeof url === 'string' ? new URL(url) : url).hostname.toLowerCase()
}

// `{` and `}` may appear in a host name; escaped, they cannot end the hash tag early.
function tag (host: string): string {
  return host.replace(/[{}%]/g, (c) => '%' + c.charCodeAt(0).toString(16).toUpperCase())
}

export interface HostKeys {
  /** Sorted set: lease id -> expiry (ms). The fetches in flight to the host. */
  slots: string
  /** Hash: pausedUntil, next (earliest next start), delayMs, limit, wanted (someone waits). */
  state: string
  /** String: 429s without Retry-After in a row (the strike counter), with an expiry. */
  strikes: string
  /** Sorted set: one job's leases on the host, for `hostConcurrency` below the host cap. */
  job(jobId: string): string
  /** String: the cached robots.txt of one origin of the host (JSON). */
  robots(origin: string): string
  /** String: the lock of whoever fetches that robots.txt now. */
  robotsLock(origin: string): string
}

export function hostKeys (prefix: string, host: string): HostKeys {
  const base = `${prefix}:host:{${tag(host)}}`
  return {
    slots: `${base}:slots`,
    state: `${base}:state`,
    strikes: `${base}:strikes`,
    job: (jobId) => `${base}:job:${jobId}`,
    robots: (origin) => `${base}:robots:${origin}`,
    robotsLock: (origin) => `${base}:robots-lock:${origin}`
  }
}

/** The channel on which releases (when someone waits) and pauses name their host. */
export function hostsChannel (prefix: string): string {
  return `${prefix}:hosts:wake`
}
