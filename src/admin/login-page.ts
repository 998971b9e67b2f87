// The login form: static text, no script, styled by the dashboard's own stylesheet.
const HEAD = `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="robots" content="noindex">
<title>trawl admin</title>
<link rel="stylesheet" href="/dashboard/style.css">
</head>
<body>
<header class="top"><h1>trawl admin</h1></header>
<main class="narrow">
<form method="post" action="/admin" class="card">
<label for="key">Admin key (one of ADMIN_API_KEYS)</label>
<input id="key" name="key" type="password" autocomplete="current-password" required autofocus>
<button type="submit">Open the queues</button>
`
const TAIL = `</form>
</main>
</body>
</html>
`

/** The /admin page; `error` is one of this module's own fixed messages, never request text. */
export function loginPage (error: string | null): string {
  return HEAD + (error === null ? '' : `<p class="error" role="alert">${error}</p>\n`) + TAIL
}
