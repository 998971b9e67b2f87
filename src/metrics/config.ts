import { z } from 'zod'

/**
 * The configuration rows of the service endpoints, to be merged into src/config.ts's
 * `configSchema` (`...metricsConfigShape`). Kept apart so that they arrive with their tests.
 */

// Comma-separated bearer keys; the message never echoes a key, since it reaches logs.
const adminKeys = z.string().optional().transform((raw, ctx): string[] => {
  if (raw === undefined) return []
  const keys = raw.split(',').map((k) => k.trim()).filter(Boolean)
  for (const [i, key] of keys.entries()) {
    if (key.length < 16 || /\s/.test(key)) ctx.addIssue({ code: 'custom', message: `key ${i + 1}: at least 16 characters and no spaces` })
  }
  if (new Set(keys).size !== keys.length) ctx.addIssue({ code: 'custom', message: 'a key is given twice' })
  return keys
})

export const metricsConfigShape = {
  /**
   * Port of a `trawl worker`'s service server (`/healthz`, `/readyz`, `/metrics`); it binds to
   * HOST. 0 picks a free port (tests). @defaultValue 9464
   */
  METRICS_PORT: z.coerce.number().int().min(0).max(65535).default(9464),
  /**
   * Operators' bearer keys, comma-separated, each 16+ characters: they open `/admin/*` and the
   * API's `/metrics`. Apart from tenants' API_KEYS. Unset: the admin routes are off and the
   * API's `/metrics` is open. @defaultValue (none)
   */
  ADMIN_API_KEYS: adminKeys
}

export const metricsConfigSchema = z.object(metricsConfigShape)
export type MetricsConfig = z.infer<typeof metricsConfigSchema>
