/* global document, window, location */
/**
 * The dashboard: hash routes `#/` (jobs) and `#/jobs/<id>` (one job). Each view returns
 * `{ stop() }`, called when the page moves on, which ends its event streams.
 */
import { AuthRequired, session } from './api.js'
import { errorBox, h } from './dom.js'
import { renderJob } from './job-page.js'
import { renderList } from './jobs-list.js'
import { keyForm } from './key-form.js'

const main = document.getElementById('main')
let view = null
let asking = false

function showAccess () {
  const key = session.key()
  document.getElementById('access').textContent = key ? 'key in use' : ''
  document.getElementById('forget').hidden = !key
}

function stopView () {
  view?.stop()
  view = null
}

async function route () {
  stopView()
  asking = false
  showAccess()
  const match = /^#\/jobs\/([^/?#]+)/.exec(location.hash)
  try {
    view = match ? await renderJob(main, decodeURIComponent(match[1])) : await renderList(main)
  } catch (err) {
    if (err instanceof AuthRequired) return
    main.replaceChildren(h('section', { class: 'card' }, errorBox(err)))
  }
}

// Any call that meets a 401 lands here: stop what runs, ask once, then start the view again.
function askForKey (message) {
  if (asking) return
  asking = true
  stopView()
  session.forgetKey()
  showAccess()
  main.replaceChildren(keyForm(message, (key) => {
    session.setKey(key)
    route()
  }))
}

window.addEventListener('trawl:auth', (e) => askForKey(e.detail))
window.addEventListener('hashchange', route)
document.getElementById('forget').addEventListener('click', () => {
  session.forgetKey()
  route()
})
route()
