import { z } from 'zod'

const int = (min: number, max: number) => z.coerce.number().int().min(min).max(max)

/**
 * The politeness settings, as a fragment for src/config.ts to merge into its schema
 * (`...hostsConfigSchema.shape`).
 */
export const hostsConfigSchema = z.object({
  /**
   * Fetches in flight at once to one host name, across every job, tenant and worker process;
   * 0 turns the cap off (pauses and spacing still apply). @defaultValue 8
   */
  HOST_CONCURRENCY: int(0, 100_000).default(8),
  /** Milliseconds between the starts of two fetches to one host. @defaultValue 0 */
  HOST_DELAY_MS: int(0, 3_600_000).default(0)
})

export type HostsConfig = z.infer<typeof hostsConfigSchema>
