import { createBullBoard } from '@bull-board/api'
import type { IServerAdapter } from '@bull-board/api/typings/app'
import { BullMQAdapter } from '@bull-board/api/bullMQAdapter'
import { FastifyAdapter } from '@bull-board/fastify'
import type { Queue } from 'bullmq'
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify'
import { usePageRoutes } from '../dashboard/pages.js'
import { sendProblem } from '../http/error-handler.js'
import { ADMIN_COOKIE, createAdminGate, sessionToken, type AdminGate } from './session.js'
import { loginPage } from './login-page.js'

export interface AdminOptions {
  /** ADMIN_API_KEYS: operators' bearer keys, apart from tenants' API_KEYS. Empty: every admin route is off (404). */
  keys: readonly string[]
  /** The BullMQ queues Bull Board shows: the fetch and callback queues. */
  queues: readonly Queue[]
  /**
   * Show the queues without the buttons that change them (retry, remove, clean, add, pause). A
   * lane carries a job's cursor: removing or adding one by hand breaks that job's accounting.
   * @defaultValue true
   */
  readOnly?: boolean
}

export const BOARD_PATH = '/admin/queues'

// Bull Board's page: its own scripts and styles from this origin, its API on this origin. It
// also asks fonts.googleapis.com for a font; the policy refuses that and the page falls back.
const ADMIN_CSP = {
  'default-src': ["'none'"],
  'script-src': ["'self'"],
  'style-src': ["'self'"],
  'img-src': ["'self'", 'data:'],
  'font-src': ["'self'"],
  'connect-src': ["'self'"],
  'base-uri': ["'self'"],
  'form-action': ["'self'"],
  'frame-ancestors': ["'none'"]
}

/**
 * `/admin` (a login form) and `/admin/queues` (Bull Board), for operators. A browser cannot
 * send a bearer header to a page it navigates to, so the form trades the key for an HttpOnly,
 * SameSite=Strict cookie: unlike HTTP Basic credentials, which a browser attaches to cross-site
 * requests too, it cannot be ridden by another site's form against the board's POST/PUT
 * routes. Scripts may still send `Authorization: Bearer <admin key>`.
 */
export async function adminRoutes (app: FastifyInstance, opts: AdminOptions): Promise<void> {
  if (opts.keys.length === 0) return
  const gate = createAdminGate(opts.keys)
  usePageRoutes(app, ADMIN_CSP)
  app.addContentTypeParser('application/x-www-form-urlencoded', { parseAs: 'string', bodyLimit: 4096 },
    (_request, body, done) => { done(null, new URLSearchParams(body as string)) })

  app.get('/admin', { schema: { hide: true } }, async (request, reply) => {
    if (gate.allows(request)) return reply.redirect(BOARD_PATH, 303)
    return reply.type('text/html; charset=utf-8').send(loginPage(null))
  })
  app.post('/admin', { schema: { hide: true } }, async (request, reply) => {
    const given = request.body instanceof URLSearchParams ? request.body.get('key') ?? '' : ''
    if (given === '' || !gate.isKey(given)) {
      return reply.code(401).type('text/html; charset=utf-8').send(loginPage('That is not an admin key.'))
    }
    reply.header('set-cookie', cookie(request, sessionToken(given)))
    return reply.redirect(BOARD_PATH, 303)
  })
  app.post('/admin/logout', { schema: { hide: true } }, async (request, reply) => {
    reply.header('set-cookie', cookie(request, '', 0))
    return reply.redirect('/admin', 303)
  })
  await app.register(async (board) => {
    board.addHook('onRequest', async (request, reply) => refuseStranger(gate, request, reply))
    await board.register(bullBoard(opts).registerPlugin(), { prefix: BOARD_PATH })
  })
}

function bullBoard (opts: AdminOptions): FastifyAdapter {
  const serverAdapter = new FastifyAdapter()
  serverAdapter.setBasePath(BOARD_PATH)
  const readOnlyMode = opts.readOnly ?? true
  createBullBoard({
    queues: opts.queues.map((q) => new BullMQAdapter(q, { readOnlyMode })),
    // @bull-board/fastify 9.10.1 brings its own @bull-board/api 9.10.1 beside ours (9.10.2): the
    // same interface declared twice, which TypeScript will not match across the copies.
    serverAdapter: serverAdapter as unknown as IServerAdapter,
    options: { uiConfig: { boardTitle: 'trawl queues', hideRedisDetails: false } }
  })
  return serverAdapter
}

// A person who opens the board without the cookie is sent to the form; a script gets a 401.
async function refuseStranger (gate: AdminGate, request: FastifyRequest, reply: FastifyReply): Promise<FastifyReply | undefined> {
  if (gate.allows(request)) return undefined
  const wantsPage = request.method === 'GET' && (request.headers.accept ?? '').includes('text/html')
  if (wantsPage) return reply.redirect('/admin', 303)
  return sendProblem(reply, 'UNAUTHORIZED', 'Send an admin key as Authorization: Bearer <key>, or log in at /admin.')
}

function cookie (request: FastifyRequest, value: string, maxAge?: number): string {
  const parts = [`${ADMIN_COOKIE}=${value}`, 'Path=/admin', 'HttpOnly', 'SameSite=Strict']
  // Secure when this request came over TLS (directly, or through a proxy Fastify trusts).
  if (request.protocol === 'https') parts.push('Secure')
  if (maxAge !== undefined) parts.push(`Max-Age=${maxAge}`)
  return parts.join('; ')
}
