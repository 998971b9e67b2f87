/* global document, window */
/**
 * Opening a stored body or the archive. With a key the request needs the Authorization header,
 * so the page fetches it and hands the browser a blob. A body is someone else's page: shown
 * from a blob it would run in this origin, so only inert types keep their type; markup and
 * scripts are shown as plain text and anything else is saved as a file. Without a key (an open
 * server) the links are plain links; the server sends bodies with a sandboxing CSP.
 */
import { call, isOpen } from './api.js'

const INERT = /^(image\/(png|jpeg|gif|webp|avif)|application\/pdf|text\/plain|application\/json)\b/i
const TEXTUAL = /^(text\/|application\/(xml|xhtml\+xml|javascript|ld\+json)|image\/svg\+xml)/i

function saveAs (blob, name) {
  const url = URL.createObjectURL(blob)
  const a = document.createElement('a')
  a.href = url
  a.download = name
  document.body.append(a)
  a.click()
  a.remove()
  setTimeout(() => URL.revokeObjectURL(url), 60_000)
}

async function fetchBlob (path) {
  const res = await call(path)
  if (!res.ok) throw new Error(res.status === 404 ? 'Not available (404).' : `The server answered ${res.status}.`)
  return { blob: await res.blob(), type: res.headers.get('content-type') ?? 'application/octet-stream' }
}

/** Opens a result's body (`contentUrl`) in a new tab, or saves it. */
export async function openBody (contentUrl, name) {
  const { blob, type } = await fetchBlob(contentUrl)
  if (!INERT.test(type) && !TEXTUAL.test(type)) return saveAs(blob, name)
  const shown = new Blob([blob], { type: INERT.test(type) ? type : 'text/plain;charset=utf-8' })
  const url = URL.createObjectURL(shown)
  window.open(url, '_blank', 'noopener')
  setTimeout(() => URL.revokeObjectURL(url), 60_000)
}

export async function saveArchive (jobId) {
  const { blob } = await fetchBlob(`/jobs/${encodeURIComponent(jobId)}/archive`)
  saveAs(blob, `${jobId}.zip`)
}

/**
 * Makes `link` (a plain <a href>) fetch with the key when a key is in use; `onError(err)` is
 * told when that fails.
 */
export function withKey (link, action, onError) {
  link.addEventListener('click', (e) => {
    if (isOpen()) return
    e.preventDefault()
    action().catch(onError)
  })
  return link
}
