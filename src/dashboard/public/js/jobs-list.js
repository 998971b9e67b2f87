/* global CSS */
/**
 * The jobs page: a form to submit a batch, and the caller's jobs with live progress. The list
 * comes from `GET /jobs` (`{ jobs, page: { next } }`); on a server without that route (404 or
 * 405) it falls back to the jobs this tab submitted, remembered in sessionStorage.
 */
import { ApiError, json, session } from './api.js'
import { badge, errorBox, formatBytes, formatTime, h } from './dom.js'
import { finishedCount, trackJob } from './track.js'
import { submitForm } from './submit-form.js'

const PAGE = 50
// A browser opens at most 6 HTTP/1.1 connections to one origin and each stream holds one: the
// list follows this many jobs at once and the rest as those finish, leaving room for the page.
const MAX_STREAMS = 3

/** Runs `start(done)` tasks at most `max` at a time; each calls done() when it ends. */
function limiter (max) {
  const queue = []
  let active = 0
  const next = () => {
    while (active < max && queue.length > 0) {
      active++
      let released = false
      queue.shift()(() => {
        if (released) return
        released = true
        active--
        next()
      })
    }
  }
  return (start) => {
    queue.push(start)
    next()
  }
}

async function listFromServer (path) {
  const body = await json(path)
  return { jobs: body.jobs ?? [], next: body.page?.next ?? null, listed: true }
}

// One GET per remembered id; ids that expired or are not this key's are forgotten.
async function listFromSession () {
  const docs = await Promise.all(session.jobIds().map(async (id) => {
    try {
      return await json(`/jobs/${encodeURIComponent(id)}?results=none`)
    } catch (err) {
      if (err instanceof ApiError && err.status === 404) session.forgetJob(id)
      else throw err
      return null
    }
  }))
  return { jobs: docs.filter(Boolean), next: null, listed: false }
}

async function loadJobs (path) {
  try {
    return await listFromServer(path ?? `/jobs?limit=${PAGE}`)
  } catch (err) {
    if (err instanceof ApiError && (err.status === 404 || err.status === 405)) return listFromSession()
    throw err
  }
}

function countsText (view) {
  const c = view.counts
  return `${finishedCount(view)} / ${view.total} done · ${c.succeeded} ok · ${c.failed} failed · ${c.cancelled} cancelled`
}

/** One table row, updated in place as its job moves. */
function jobRow (doc) {
  const link = h('a', { href: `#/jobs/${encodeURIComponent(doc.id)}` }, doc.id)
  const state = h('td', { class: 'state' })
  const bar = h('progress', { max: Math.max(1, doc.total), value: 0 })
  const counts = h('td', { class: 'counts' })
  const bytes = h('td', { class: 'num' })
  const row = h('tr', { dataset: { jobId: doc.id } },
    h('td', { class: 'mono' }, link), state, h('td', {}, bar), counts, bytes, h('td', {}, formatTime(doc.createdAt)))
  const show = (view) => {
    state.replaceChildren(badge(view.state))
    row.dataset.state = view.state
    bar.value = finishedCount(view)
    counts.textContent = countsText(view)
    bytes.textContent = formatBytes(view.bytes)
  }
  show(doc)
  return { row, show }
}

function jobsTable () {
  const body = h('tbody', {})
  const table = h('table', { class: 'jobs', id: 'jobs' },
    h('thead', {}, h('tr', {}, ['Job', 'State', 'Progress', 'Counts', 'Bytes', 'Created'].map((t) => h('th', {}, t)))), body)
  return { table, body }
}

export async function renderList (main) {
  const trackers = new Map()
  const slots = limiter(MAX_STREAMS)
  let stopped = false
  const { table, body } = jobsTable()
  const note = h('p', { class: 'muted', id: 'list-note' })
  const more = h('button', { type: 'button', hidden: true }, 'More jobs')
  const empty = h('p', { class: 'muted', id: 'no-jobs' }, 'No jobs yet: submit one above.')

  const add = (doc, { first = false } = {}) => {
    if (body.querySelector(`tr[data-job-id="${CSS.escape(doc.id)}"]`)) return
    const { row, show } = jobRow(doc)
    if (first) body.prepend(row)
    else body.append(row)
    empty.hidden = true
    slots((done) => {
      if (stopped) return done()
      trackers.set(doc.id, trackJob(doc, { onChange: show, onEnd: done }))
    })
  }
  let next = null
  const loadMore = async (path) => {
    const page = await loadJobs(path)
    for (const doc of page.jobs) add(doc)
    next = page.next
    more.hidden = next === null
    note.textContent = page.listed ? 'Your jobs, newest first.' : 'The jobs submitted from this browser tab, newest first.'
    empty.hidden = body.children.length > 0
  }
  more.addEventListener('click', () => { loadMore(next).catch((err) => note.replaceWith(errorBox(err))) })

  const form = submitForm((doc) => {
    session.rememberJob(doc.id)
    add(doc, { first: true })
  })
  main.replaceChildren(form, h('section', { class: 'card' }, h('h2', {}, 'Jobs'), note, empty, table, more))
  await loadMore(null)
  return {
    stop () {
      stopped = true
      for (const t of trackers.values()) t.stop()
    }
  }
}
