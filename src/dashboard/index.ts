import { readFile } from 'node:fs/promises'
import { fileURLToPath } from 'node:url'
import fastifyStatic from '@fastify/static'
import type { FastifyInstance } from 'fastify'
import { usePageRoutes } from './pages.js'

/**
 * The page's files, from the package: two levels up from both src/dashboard/ and
 * dist/dashboard/, so the same path serves a checkout and a built image (which copies
 * src/dashboard/public; tsc copies no assets).
 */
export const DASHBOARD_ASSETS = fileURLToPath(new URL('../../src/dashboard/public/', import.meta.url))

/**
 * Only the page's own files: no inline script or style, no eval, nothing from another origin.
 * `blob:` lets a fetched body open in a tab (the bodies module decides which types may).
 */
export const DASHBOARD_CSP = {
  'default-src': ["'none'"],
  'script-src': ["'self'"],
  'style-src': ["'self'"],
  'img-src': ["'self'", 'data:', 'blob:'],
  'connect-src': ["'self'"],
  'base-uri': ["'none'"],
  'form-action': ["'self'"],
  'frame-ancestors': ["'none'"]
}

/**
 * `GET /` and `/dashboard/*`: the page for people. Plain HTML, CSS and ES modules, no build
 * step. The files are public; what they show comes from the API with the person's key.
 */
export async function dashboardRoutes (app: FastifyInstance, opts: { assets?: string } = {}): Promise<void> {
  const root = opts.assets ?? DASHBOARD_ASSETS
  const index = await readFile(new URL('index.html', `file://${root}`))
  usePageRoutes(app, DASHBOARD_CSP)
  app.get('/', { schema: { hide: true } }, async (_request, reply) => {
    return reply.type('text/html; charset=utf-8').header('cache-control', 'no-cache').send(index)
  })
  await app.register(fastifyStatic, { root, prefix: '/dashboard/', decorateReply: false, index: false })
}
