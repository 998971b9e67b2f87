import { inflateSync } from 'node:zlib'

/**
 * Just enough of a PNG decoder to tell a screenshot from a blank one: 8-bit RGB or RGBA,
 * not interlaced (what Chromium writes). Returns the pixels as RGBA.
 */
export function decodePng (png: Buffer): { width: number, height: number, rgba: Buffer } {
  if (png.readUInt32BE(0) !== 0x89504e47) throw new Error('not a PNG')
  let off = 8
  let width = 0
  let height = 0
  let channels = 0
  const idat: Buffer[] = []
  while (off < png.length) {
    const len = png.readUInt32BE(off)
    const type = png.toString('ascii', off + 4, off + 8)
    const data = png.subarray(off + 8, off + 8 + len)
    if (type === 'IHDR') {
      width = data.readUInt32BE(0)
      height = data.readUInt32BE(4)
      const [depth, colour, , , interlace] = [data[8], data[9], data[10], data[11], data[12]]
      if (depth !== 8 || (colour !== 2 && colour !== 6) || interlace !== 0) throw new Error('unsupported PNG form')
      channels = colour === 6 ? 4 : 3
    } else if (type === 'IDAT') {
      idat.push(data)
    }
    off += 12 + len
  }
  const raw = inflateSync(Buffer.concat(idat))
  return { width, height, rgba: unfilter(raw, width, height, channels) }
}

function unfilter (raw: Buffer, width: number, height: number, channels: number): Buffer {
  const stride = width * channels
  const out = Buffer.alloc(width * height * 4)
  let prev = Buffer.alloc(stride)
  for (let y = 0; y < height; y++) {
    const filter = raw[y * (stride + 1)]
    const line = Buffer.from(raw.subarray(y * (stride + 1) + 1, (y + 1) * (stride + 1)))
    for (let i = 0; i < stride; i++) {
      const a = i >= channels ? line[i - channels] as number : 0
      const b = prev[i] as number
      const c = i >= channels ? prev[i - channels] as number : 0
      const p = a + b - c
      const pa = Math.abs(p - a)
      const pb = Math.abs(p - b)
      const pc = Math.abs(p - c)
      const predictor = [0, a, b, (a + b) >> 1, pa <= pb && pa <= pc ? a : pb <= pc ? b : c][filter as number] as number
      line[i] = ((line[i] as number) + predictor) & 0xff
    }
    for (let x = 0; x < width; x++) {
      for (let ch = 0; ch < 4; ch++) out[(y * width + x) * 4 + ch] = ch < channels ? line[x * channels + ch] as number : 255
    }
    prev = line
  }
  return out
}

/** How much of the picture is its most common colour (0-1), and how many colours it has. */
export function colourStats (png: Buffer): { dominantShare: number, colours: number, width: number, height: number } {
  const { width, height, rgba } = decodePng(png)
  const counts = new Map<number, number>()
  for (let i = 0; i < rgba.length; i += 4) {
    const key = rgba.readUInt32BE(i)
    counts.set(key, (counts.get(key) ?? 0) + 1)
  }
  const top = Math.max(...counts.values())
  return { dominantShare: top / (width * height), colours: counts.size, width, height }
}
