// The fs store's writer thread (src/content/fs-writer.ts starts it), and the one write it does,
// which fs-writer.ts also calls in place when the event loop is not busy. Plain JavaScript: a
// worker thread starts without the TypeScript loader of its parent, under tsx as from dist/;
// fs-writer-thread.d.mts types the export.
//
// The thread receives batches of small bodies, WriteItem[] as fs-writer.ts declares it, and
// writes each with synchronous calls to its temporary name, then renames it into place; it
// answers with WriteDone[] (each body's id, and null or the error). A temporary file whose
// write failed is removed before the answer.
import { closeSync, fsyncSync, mkdirSync, openSync, renameSync, unlinkSync, writeSync } from 'node:fs'
import { parentPort } from 'node:worker_threads'

/** The job's folder is made only when missing: its first body, or after a purge. */
function openTmp (item) {
  try {
    return openSync(item.tmp, 'wx')
  } catch (err) {
    if (err.code !== 'ENOENT') throw err
    mkdirSync(item.dir, { recursive: true })
    return openSync(item.tmp, 'wx')
  }
}

/** Writes `item.data` to `item.tmp`, then renames it to `item.path`; throws the system error, leaving nothing. */
export function writeOne (item) {
  const fd = openTmp(item)
  try {
    try {
      // write(2) may write less than asked (a nearly full disk): go on from there.
      for (let offset = 0; offset < item.data.byteLength;) offset += writeSync(fd, item.data, offset)
      if (item.fsync) fsyncSync(fd)
    } finally {
      closeSync(fd)
    }
    renameSync(item.tmp, item.path)
  } catch (err) {
    try { unlinkSync(item.tmp) } catch {}
    throw err
  }
}

// Imported by the main thread for writeOne, this module has no parent port there.
parentPort?.on('message', (items) => {
  parentPort.postMessage(items.map((item) => {
    try {
      writeOne(item)
      return { id: item.id, error: null }
    } catch (err) {
      return { id: item.id, error: { message: err.message, code: err.code } }
    }
  }))
})
