/** Asks for the API key once; it is kept in this tab's sessionStorage and nowhere else. */
import { h } from './dom.js'

export function keyForm (message, onKey) {
  const input = h('input', { id: 'api-key', name: 'key', type: 'password', autocomplete: 'off', required: true, spellcheck: 'false' })
  const form = h('form', { class: 'card narrow', id: 'key-form' },
    h('h2', {}, 'API key'),
    h('p', {}, message),
    h('label', { for: 'api-key' }, 'Your key (the part after the colon in API_KEYS)'),
    input,
    h('p', { class: 'muted' }, 'Kept in this browser tab only (sessionStorage) and sent as Authorization: Bearer.'),
    h('button', { type: 'submit' }, 'Use this key'))
  form.addEventListener('submit', (e) => {
    e.preventDefault()
    const key = input.value.trim()
    if (key !== '') onKey(key)
  })
  setTimeout(() => input.focus(), 0)
  return form
}
