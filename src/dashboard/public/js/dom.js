/* global document */
/**
 * Small DOM helpers. Text from the API (URLs, error messages) only ever goes in as text nodes
 * or attribute values, never as HTML.
 */

/** Creates an element: h('a', { href: '#/', class: 'x', onclick: fn }, 'text', child) */
export function h (tag, props = {}, ...children) {
  const el = document.createElement(tag)
  for (const [name, value] of Object.entries(props)) {
    if (value === null || value === undefined || value === false) continue
    if (name === 'class') el.className = value
    else if (name === 'dataset') Object.assign(el.dataset, value)
    else if (name.startsWith('on')) el.addEventListener(name.slice(2), value)
    else el.setAttribute(name, value === true ? '' : String(value))
  }
  for (const child of children.flat(Infinity)) {
    if (child === null || child === undefined || child === false) continue
    el.append(typeof child === 'object' ? child : String(child))
  }
  return el
}

export function formatBytes (n) {
  if (typeof n !== 'number') return ''
  if (n < 1024) return `${n} B`
  const units = ['KiB', 'MiB', 'GiB', 'TiB']
  let v = n / 1024
  let i = 0
  while (v >= 1024 && i < units.length - 1) {
    v /= 1024
    i++
  }
  return `${v.toFixed(v < 10 ? 1 : 0)} ${units[i]}`
}

export function formatTime (iso) {
  if (!iso) return '—'
  const d = new Date(iso)
  return Number.isNaN(d.getTime()) ? iso : d.toLocaleString()
}

export function formatMs (ms) {
  if (typeof ms !== 'number') return '—'
  return ms < 1000 ? `${ms} ms` : `${(ms / 1000).toFixed(1)} s`
}

/** A state as a coloured badge; the class names are the contract's state names. */
export function badge (state, extra = {}) {
  return h('span', { class: `badge state-${state}`, ...extra }, state)
}

/** A problem answer (RFC 9457) or any error, as a message block. */
export function errorBox (err) {
  const lines = Array.isArray(err.errors) ? err.errors.map((e) => h('li', {}, `${e.path}: ${e.message}`)) : []
  return h('div', { class: 'error', role: 'alert' }, err.message ?? String(err), lines.length > 0 ? h('ul', {}, lines) : null)
}
