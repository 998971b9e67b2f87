/**
 * A job's page: its summary (live), cancel, its archive, and its results a page at a time, each
 * with its error and a link to its body. Result rows on the page shown are replaced as their
 * URLs end.
 */
import { ApiError, json } from './api.js'
import { openBody, saveArchive, withKey } from './bodies.js'
import { badge, errorBox, formatBytes, formatMs, formatTime, h } from './dom.js'
import { finishedCount, isFinal, trackJob } from './track.js'

const LIMIT = 50

function summary (view) {
  const c = view.counts
  const rows = [
    ['State', badge(view.state, { id: 'job-state' })],
    ['Progress', h('span', { id: 'job-counts' }, `${finishedCount(view)} / ${view.total} done · ${c.succeeded} ok · ${c.failed} failed · ${c.cancelled} cancelled · ${view.total - finishedCount(view)} to go`)],
    ['Bytes', formatBytes(view.bytes)],
    ['Duration', formatMs(view.durationMs)],
    ['Created', formatTime(view.createdAt)],
    ['Finished', formatTime(view.finishedAt)],
    ['Expires', formatTime(view.expiresAt)],
    ['Options', `concurrency ${view.options?.concurrency}, timeout ${formatMs(view.options?.timeoutMs)}, retries ${view.options?.retries}, bodies ${view.options?.keepContent ? 'kept' : 'not kept'}`]
  ]
  if (view.error) rows.push(['Error', `${view.error.code}: ${view.error.message}`])
  if (view.callback) rows.push(['Callback', `${view.callback.state} after ${view.callback.attempts} attempt(s)`])
  return h('dl', { class: 'summary' }, rows.map(([k, v]) => [h('dt', {}, k), h('dd', {}, v)]))
}

function resultRow (item, onError) {
  const body = item.contentUrl
    ? withKey(h('a', { href: item.contentUrl, target: '_blank', rel: 'noopener', class: 'body-link' }, 'body'),
      () => openBody(item.contentUrl, `result-${item.index}`), onError)
    : '—'
  const error = item.error ? h('span', { class: 'err' }, h('code', {}, item.error.code), ' ', item.error.message) : ''
  return h('tr', { dataset: { index: item.index, state: item.state } },
    h('td', { class: 'num' }, item.index),
    h('td', { class: 'url' }, h('span', { title: item.finalUrl ?? item.url }, item.url)),
    h('td', {}, badge(item.state)),
    h('td', { class: 'num' }, item.status ?? '—'),
    h('td', { class: 'num' }, formatBytes(item.bytes)),
    h('td', { class: 'num' }, formatMs(item.durationMs)),
    h('td', { class: 'num' }, item.attempts),
    h('td', {}, error),
    h('td', {}, body))
}

function resultsTable () {
  const body = h('tbody', {})
  const heads = ['#', 'URL', 'State', 'Status', 'Bytes', 'Time', 'Attempts', 'Error', 'Body']
  return { body, table: h('table', { class: 'results', id: 'results' }, h('thead', {}, h('tr', {}, heads.map((t) => h('th', {}, t)))), body) }
}

function actions (id, onCancel, onError) {
  const cancel = h('button', { type: 'button', id: 'cancel', class: 'danger' }, 'Cancel job')
  cancel.addEventListener('click', onCancel)
  const archive = withKey(h('a', { href: `/jobs/${encodeURIComponent(id)}/archive`, download: `${id}.zip`, id: 'archive', class: 'button' }, 'Download archive (ZIP)'),
    () => saveArchive(id), onError)
  return { cancel, bar: h('div', { class: 'row actions' }, cancel, archive, h('a', { href: '#/' }, '← all jobs')) }
}

export async function renderJob (main, id) {
  const path = (offset) => `/jobs/${encodeURIComponent(id)}?offset=${offset}&limit=${LIMIT}`
  let doc
  try {
    doc = await json(path(0))
  } catch (err) {
    if (!(err instanceof ApiError) || err.status !== 404) throw err
    main.replaceChildren(h('section', { class: 'card' }, h('h2', {}, id), errorBox(err), h('a', { href: '#/' }, '← all jobs')))
    return { stop () {} }
  }
  const messages = h('div', { id: 'messages' })
  const onError = (err) => messages.replaceChildren(errorBox(err))
  const view = createJobView(id, doc, path, onError)
  const { cancel, bar } = actions(id, () => view.cancel().catch(onError), onError)
  view.onFinal(() => { cancel.disabled = true })
  main.replaceChildren(h('section', { class: 'card' }, h('h2', { class: 'mono' }, id), view.summaryBox, bar, messages),
    h('section', { class: 'card' }, h('h2', {}, 'Results'), view.pager, view.table))
  return { stop: () => view.stop() }
}

/** The results table with its pager; `load(offset)` shows that page, `reload()` the current one. */
function resultsPager (path, onError) {
  const { body, table } = resultsTable()
  const prev = h('button', { type: 'button' }, '← previous')
  const next = h('button', { type: 'button' }, 'next →')
  const where = h('span', { class: 'muted', id: 'page-info' })
  let offset = 0
  const show = (doc) => {
    offset = doc.page?.offset ?? 0
    body.replaceChildren(...(doc.results ?? []).map((item) => resultRow(item, onError)))
    where.textContent = doc.total === 0 ? 'no results' : `results ${offset + 1}–${Math.min(doc.total, offset + LIMIT)} of ${doc.total}`
    prev.disabled = offset === 0
    next.disabled = doc.page?.next === null || doc.page?.next === undefined
  }
  const load = (at) => json(path(at)).then(show).catch(onError)
  prev.addEventListener('click', () => load(Math.max(0, offset - LIMIT)))
  next.addEventListener('click', () => load(offset + LIMIT))
  // A URL that ends replaces its row, if the row is on the page shown.
  const replace = (item) => body.querySelector(`tr[data-index="${item.index}"]`)?.replaceWith(resultRow(item, onError))
  return { table, pager: h('div', { class: 'row pager' }, prev, where, next), show, replace, reload: () => load(offset) }
}

function createJobView (id, first, path, onError) {
  const summaryBox = h('div', {})
  const results = resultsPager(path, onError)
  let finalHook = () => {}
  const showSummary = (view) => {
    summaryBox.replaceChildren(summary(view))
    if (isFinal(view)) {
      finalHook()
      results.reload() // the final states of every row on this page, cancelled ones included
    }
  }
  const tracker = trackJob(first, { onChange: showSummary, onResult: results.replace, onGone: onError })
  summaryBox.replaceChildren(summary(first))
  results.show(first)
  return {
    summaryBox,
    table: results.table,
    pager: results.pager,
    stop: () => tracker.stop(),
    onFinal (fn) {
      finalHook = fn
      if (isFinal(first)) fn()
    },
    async cancel () {
      tracker.update(await json(`/jobs/${encodeURIComponent(id)}`, { method: 'DELETE' }))
    }
  }
}
