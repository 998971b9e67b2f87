import { mkdir, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import t, { type Test } from 'tap'
import { startGateServer } from '../helpers/gate-server.js'
import { startTargetServer } from '../helpers/target-server.js'
import { ROOT, startTrawl } from '../helpers/trawl.js'
import { foreignRequests, launchBrowser } from './browser.js'
import { colourStats } from './png.js'

// The dashboard and the API reference in a real headless Chromium, against a real service (API
// and worker in this process, on a test prefix) that requires an API key.
const KEY = 'dashboard-test-key-0123456789'

async function savedScreenshot (t: Test, png: Buffer, name: string): Promise<void> {
  await mkdir(join(ROOT, 'docs'), { recursive: true })
  await writeFile(join(ROOT, 'docs', name), png)
  const stats = colourStats(png)
  t.ok(png.length > 20_000, `${name} is ${png.length} bytes`)
  t.ok(stats.colours > 50, `${name} has ${stats.colours} colours`)
  t.ok(stats.dominantShare < 0.9, `${name}: the commonest colour covers ${(stats.dominantShare * 100).toFixed(0)}%, not all of it`)
}

t.test('a person follows jobs in the dashboard and reads the API reference', async (t) => {
  const gate = await startGateServer(2000)
  t.teardown(() => gate.close())
  const target = await startTargetServer(t)
  const trawl = await startTrawl(t, { env: { API_KEYS: `people:${KEY}` } })
  const base = (await trawl.api.app.listen({ port: 0, host: '127.0.0.1' })).replace('localhost', '127.0.0.1')

  const home = await fetch(`${base}/`)
  const csp = home.headers.get('content-security-policy') ?? ''
  const scriptSrc = csp.split(';').map((d) => d.trim()).find((d) => d.startsWith('script-src')) ?? ''
  t.equal(home.status, 200, 'the page itself needs no key')
  t.match(scriptSrc, /^script-src 'self'$/, `only the page's own scripts: ${scriptSrc}`)
  t.notMatch(csp, /unsafe-inline|unsafe-eval/, 'no inline code, no eval')
  const api = await fetch(`${base}/jobs/j_01ARZ3NDEKTSV4RRFFQ69G5FAV`)
  t.match(api.headers.get('content-security-policy'), /^default-src 'none'/, "the API's own policy is untouched")
  t.equal(api.status, 401, 'and the API still wants a key')

  const { page, context, requests, problems } = await launchBrowser(t)
  await page.goto(`${base}/`)

  await t.test('the key is asked for once and kept in the session', async (t) => {
    await page.locator('#api-key').fill(KEY)
    await page.locator('#key-form button[type=submit]').click()
    await page.locator('#jobs').waitFor()
    t.equal(await page.evaluate('sessionStorage.getItem("trawl.apiKey")'), KEY)
    t.equal(await page.evaluate('localStorage.length'), 0, 'nothing in localStorage')
  })

  let liveId = ''
  await t.test('a submitted job shows its counts live, up to the end', async (t) => {
    const urls = [gate.url('/fast/1'), gate.url('/fast/2'), gate.url('/hold/3'), gate.url('/hold/4')]
    await page.locator('#urls').fill(urls.join('\n'))
    await page.locator('#submit').click()
    const row = page.locator('#jobs tbody tr').first()
    await row.waitFor()
    liveId = await row.getAttribute('data-job-id') ?? ''
    t.match(liveId, /^j_/)
    await gate.untilWaiting(2)
    // Two answered, two held at the gate: the row shows the middle of the job, not just its end.
    await row.locator('.counts', { hasText: '2 / 4 done' }).waitFor()
    t.equal(await row.getAttribute('data-state'), 'running')
    gate.open()
    await page.locator(`#jobs tr[data-job-id="${liveId}"][data-state="completed"] .counts`, { hasText: '4 / 4 done · 4 ok' }).waitFor()
    t.pass('the row reached completed, 4 of 4, without a reload')
  })

  await t.test("a job's page shows its results and opens a body with the key", async (t) => {
    await page.locator(`a[href="#/jobs/${liveId}"]`).first().click()
    await page.locator('#results tbody tr[data-state="succeeded"]').nth(3).waitFor()
    t.equal(await page.locator('#job-state').textContent(), 'completed')
    const [popup] = await Promise.all([context.waitForEvent('page'), page.locator('#results .body-link').first().click()])
    await popup.waitForLoadState()
    t.match(popup.url(), /^blob:/, 'the body was fetched with the key and shown from a blob')
    t.equal((await popup.locator('body').textContent())?.trim(), 'x'.repeat(2000))
    await popup.close()
  })

  await t.test('a slow job is cancelled from its page', async (t) => {
    await page.goto(`${base}/#/`)
    await page.locator('#urls').fill([target.url('/slow-headers'), target.url('/slow-headers?ms=60000')].join('\n'))
    await page.locator('#submit').click()
    const link = page.locator('#submit-form .status a')
    await link.waitFor()
    const slowId = (await link.textContent()) ?? ''
    await link.click()
    await page.locator('#job-state', { hasText: 'running' }).waitFor()
    await page.locator('#cancel').click()
    await page.locator('#job-state', { hasText: 'cancelled' }).waitFor()
    await page.locator('#results tbody tr[data-state="cancelled"]').nth(1).waitFor()
    t.ok(await page.locator('#cancel').isDisabled(), 'nothing left to cancel')
    await page.goto(`${base}/#/`)
    await page.locator(`#jobs tr[data-job-id="${slowId}"][data-state="cancelled"]`).waitFor()
  })

  await t.test('jobs submitted through the API are listed too, from GET /jobs, newest first', async (t) => {
    const res = await fetch(`${base}/jobs`, {
      method: 'POST',
      headers: { authorization: `Bearer ${KEY}`, 'content-type': 'application/json' },
      body: JSON.stringify({ urls: [gate.url('/fast/api-1'), gate.url('/fast/api-2')] })
    })
    t.equal(res.status, 202)
    const apiId = ((await res.json()) as { id: string }).id
    const remembered = await page.evaluate('sessionStorage.getItem("trawl.jobIds")') as string
    t.notMatch(remembered, apiId, 'this tab never saw the job')
    await page.goto(`${base}/#/`)
    await page.reload()
    const row = page.locator('#jobs tbody tr').first()
    await page.locator(`#jobs tr[data-job-id="${apiId}"][data-state="completed"] .counts`, { hasText: '2 / 2 done · 2 ok' }).waitFor()
    t.equal(await row.getAttribute('data-job-id'), apiId, 'the newest job is on top')
    t.equal(await page.locator('#list-note').textContent(), 'Your jobs, newest first.', 'the list is the server\'s, not the tab\'s memory')
    t.equal(await page.locator('#jobs tbody tr').count(), 3, 'with the two jobs submitted from the page')
    t.ok(requests.some((u) => u.startsWith(`${base}/jobs?limit=`)), 'the page asked GET /jobs')
  })

  await t.test('a screenshot of the dashboard', async (t) => {
    gate.shut()
    await page.locator('#urls').fill([gate.url('/fast/5'), gate.url('/hold/6'), gate.url('/hold/7')].join('\n'))
    await page.locator('#submit').click()
    await page.locator('#jobs tbody tr').first().locator('.counts', { hasText: '1 / 3 done' }).waitFor()
    await savedScreenshot(t, await page.screenshot({ fullPage: true }), 'dashboard.png')
    gate.open()
  })

  await t.test('/docs renders the reference from openapi.yaml', async (t) => {
    await page.goto(`${base}/docs`)
    await page.getByText('Submit a batch of URLs').first().waitFor()
    await page.getByText('Cancel a job').first().waitFor()
    t.pass('operations from openapi.yaml are on the page')
    // The title, the introduction and the first operations.
    await savedScreenshot(t, await page.screenshot({ fullPage: true, clip: { x: 0, y: 0, width: 1280, height: 1600 } }), 'api-reference.png')
  })

  t.same(foreignRequests(requests, base), [], 'every request went to the service itself')
  t.same(problems.filter((p) => /Content Security Policy|Refused/i.test(p)), [], 'no CSP violation')
})

t.test('an open service (no API_KEYS) needs no key in the page', async (t) => {
  const gate = await startGateServer(100)
  t.teardown(() => gate.close())
  const trawl = await startTrawl(t)
  const base = (await trawl.api.app.listen({ port: 0, host: '127.0.0.1' })).replace('localhost', '127.0.0.1')
  const { page } = await launchBrowser(t)
  await page.goto(`${base}/`)
  await page.locator('#urls').fill(gate.url('/fast/1'))
  await page.locator('#submit').click()
  await page.locator('#jobs tbody tr[data-state="completed"]').waitFor()
  t.equal(await page.locator('#key-form').count(), 0, 'no key was asked for')
  t.equal(await page.evaluate('sessionStorage.getItem("trawl.apiKey")'), null)
})
