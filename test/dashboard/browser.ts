import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { chromium, type BrowserContext, type Page } from 'playwright-core'
import type { Test } from 'tap'

/** Debian's chromium; `.ci/run` installs it with apt-get when missing. */
export const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium'

export interface Browser {
  context: BrowserContext
  page: Page
  /** Every URL the browser requested, in order. */
  requests: string[]
  /** Console errors and CSP violations the pages reported. */
  problems: string[]
}

/**
 * A real headless Chromium with a fresh profile, closed (and its profile removed) when the test
 * ends. Records every request and every console error, so a test can show the pages load
 * nothing from elsewhere and break no CSP rule.
 */
export async function launchBrowser (t: Test): Promise<Browser> {
  const profile = await mkdtemp(join(tmpdir(), 'trawl-chromium-'))
  const context = await chromium.launchPersistentContext(profile, {
    executablePath: CHROMIUM,
    headless: true,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--no-first-run'],
    viewport: { width: 1280, height: 860 }
  })
  t.teardown(async () => {
    await context.close()
    await rm(profile, { recursive: true, force: true })
  })
  const requests: string[] = []
  const problems: string[] = []
  context.on('request', (r) => { requests.push(r.url()) })
  const watch = (page: Page) => {
    page.on('console', (m) => { if (m.type() === 'error') problems.push(`${page.url()}: ${m.text()}`) })
    page.on('pageerror', (err) => { problems.push(`${page.url()}: ${err.message}`) })
  }
  context.on('page', watch)
  const page = context.pages()[0] ?? await context.newPage()
  watch(page)
  page.setDefaultTimeout(20_000)
  return { context, page, requests, problems }
}

/** Requests that went anywhere but `origin` (blob: and data: URLs are the page's own). */
export function foreignRequests (requests: string[], origin: string): string[] {
  return requests.filter((u) => !u.startsWith(`${origin}/`) && !u.startsWith('blob:') && !u.startsWith('data:'))
}
