import { createHmac } from 'node:crypto'

/**
 * Standard Webhooks signing: `v1,<base64 HMAC-SHA256 of "{id}.{timestamp}.{body}">`, keyed with
 * CALLBACK_SECRET's UTF-8 bytes. Receivers check it with the same three values and the secret.
 */
export function signWebhook (secret: string, id: string, timestamp: number, body: string): string {
  const mac = createHmac('sha256', secret).update(`${id}.${timestamp}.${body}`).digest('base64')
  return `v1,${mac}`
}

export function webhookHeaders (secret: string, id: string, timestamp: number, body: string): Record<string, string> {
  return {
    'webhook-id': id,
    'webhook-timestamp': String(timestamp),
    'webhook-signature': signWebhook(secret, id, timestamp, body)
  }
}
