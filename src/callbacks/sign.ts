import { createHmac } from 'node:crypto'

/** The prefix Standard Webhooks puts before a secret's base64 part. */
export const WEBHOOK_SECRET_PREFIX = 'whsec_'

// What the reference libraries (`standardwebhooks`, and `svix`, which wraps it) decode, mirrored
// from @stablelib/base64: at least 4 characters, at most two trailing `=`, the standard alphabet;
// a lone character left after the last full group of 4 is ignored, whatever it is. For every
// string this accepts, Node's decoder gives the very bytes theirs does.
function decodeBase64 (text: string): Buffer | null {
  const data = text.replace(/={1,2}$/, '')
  if (text.length < 4 || data.endsWith('=')) return null
  const checked = data.length % 4 === 1 ? data.slice(0, -1) : data
  if (!/^[A-Za-z0-9+/]*$/.test(checked)) return null
  const key = Buffer.from(checked, 'base64')
  return key.length > 0 ? key : null
}

/**
 * The HMAC key a CALLBACK_SECRET stands for, exactly as the Standard Webhooks libraries
 * (`new Webhook(secret)` in `standardwebhooks` and `svix`) derive it, so a receiver hands them the
 * very same string:
 *
 * - `whsec_<base64>`: the bytes the base64 part decodes to. A part that is not base64 is a
 *   configuration error (thrown), as it is for the libraries.
 * - no prefix, and the text is base64 (an `openssl rand -hex 32` or `-base64 32` secret is): the
 *   bytes it decodes to, as the libraries do with an unprefixed secret.
 * - no prefix, and not base64 (e.g. it has `-` or `_`): the libraries refuse such a secret, so
 *   its UTF-8 bytes are the key; a receiver verifies with `new Webhook(secret, { format: 'raw' })`.
 *
 * Prefer `whsec_` followed by 24 to 64 random bytes in base64 (`whsec_$(openssl rand -base64 32)`).
 *
 * @throws Error when a `whsec_` secret's base64 part does not decode.
 */
export function webhookKey (secret: string): Buffer {
  if (secret.startsWith(WEBHOOK_SECRET_PREFIX)) {
    const key = decodeBase64(secret.slice(WEBHOOK_SECRET_PREFIX.length))
    if (key === null) throw new Error('CALLBACK_SECRET starts with whsec_ but the rest is not base64')
    return key
  }
  return decodeBase64(secret) ?? Buffer.from(secret, 'utf8')
}

/**
 * A zod `refine` check for CALLBACK_SECRET (for src/config.ts): true when {@link webhookKey}
 * accepts the secret, so a bad `whsec_` secret stops the process at boot.
 */
export function isUsableWebhookSecret (secret: string): boolean {
  try {
    webhookKey(secret)
    return true
  } catch {
    return false
  }
}

/**
 * Standard Webhooks signing: `v1,<base64 HMAC-SHA256 of "{id}.{timestamp}.{body}">`, keyed with
 * {@link webhookKey}(secret). `timestamp` is in seconds since the epoch.
 */
export function signWebhook (secret: string, id: string, timestamp: number, body: string): string {
  const mac = createHmac('sha256', webhookKey(secret)).update(`${id}.${timestamp}.${body}`).digest('base64')
  return `v1,${mac}`
}

/** The three Standard Webhooks headers for one delivery attempt. */
export function webhookHeaders (secret: string, id: string, timestamp: number, body: string): Record<string, string> {
  return {
    'webhook-id': id,
    'webhook-timestamp': String(timestamp),
    'webhook-signature': signWebhook(secret, id, timestamp, body)
  }
}
