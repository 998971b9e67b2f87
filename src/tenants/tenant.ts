/** The tenant of an open service (no API_KEYS), and of a job record written without one. */
export const OPEN_TENANT = 'public'
