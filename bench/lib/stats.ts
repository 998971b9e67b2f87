export function median (xs: readonly number[]): number {
  if (xs.length === 0) return NaN
  const s = [...xs].sort((a, b) => a - b)
  const mid = Math.floor(s.length / 2)
  return s.length % 2 === 1 ? (s[mid] as number) : ((s[mid - 1] as number) + (s[mid] as number)) / 2
}

export const ms = (x: number): string => (x >= 10_000 ? `${(x / 1000).toFixed(1)} s` : x >= 1000 ? `${(x / 1000).toFixed(2)} s` : `${x.toFixed(0)} ms`)
export const mb = (bytes: number): string => `${(bytes / 1e6).toFixed(0)} MB`
export const ratio = (x: number): string => `${x.toFixed(2)}x`
export const rate = (count: number, millis: number): string => `${Math.round((count * 1000) / millis).toLocaleString('en-US')}/s`
