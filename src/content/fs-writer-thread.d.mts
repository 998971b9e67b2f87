// Types of fs-writer-thread.mjs (plain JavaScript, so that the thread needs no TypeScript loader).

/** Writes `data` to `tmp` (making `dir` when missing, and fsyncing when asked), then renames it to `path`. Throws the system error and leaves no file. */
export function writeOne (item: { dir: string, tmp: string, path: string, data: Uint8Array, fsync: boolean }): void
