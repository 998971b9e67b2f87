/** The submit form: URLs one a line, a few options, `POST /jobs`. */
import { json } from './api.js'
import { errorBox, h } from './dom.js'

export function submitForm (onSubmitted) {
  const urls = h('textarea', { id: 'urls', name: 'urls', rows: 5, required: true, placeholder: 'https://example.org/\nhttps://example.com/page', spellcheck: 'false' })
  const concurrency = h('input', { id: 'concurrency', name: 'concurrency', type: 'number', min: 1, max: 1000, value: 5 })
  const keep = h('input', { id: 'keep', name: 'keepContent', type: 'checkbox', checked: true })
  const status = h('div', { class: 'status', 'aria-live': 'polite' })
  const button = h('button', { type: 'submit', id: 'submit' }, 'Submit')
  const form = h('form', { class: 'card', id: 'submit-form' },
    h('h2', {}, 'New job'),
    h('label', { for: 'urls' }, 'URLs, one a line'), urls,
    h('div', { class: 'row' },
      h('label', { for: 'concurrency' }, 'Concurrency ', concurrency),
      h('label', { for: 'keep' }, keep, ' Keep bodies'),
      button),
    status)
  form.addEventListener('submit', async (e) => {
    e.preventDefault()
    const list = urls.value.split(/\s+/).map((u) => u.trim()).filter(Boolean)
    if (list.length === 0) return
    button.disabled = true
    status.replaceChildren()
    try {
      const options = { concurrency: Number(concurrency.value) || 5, keepContent: keep.checked }
      const doc = await json('/jobs', { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ urls: list, options }) })
      urls.value = ''
      status.replaceChildren(h('span', { class: 'ok' }, 'Submitted ', h('a', { href: `#/jobs/${encodeURIComponent(doc.id)}` }, doc.id)))
      onSubmitted(doc)
    } catch (err) {
      status.replaceChildren(errorBox(err))
    } finally {
      button.disabled = false
    }
  })
  return form
}
