// The signed-in session as the page sees it: whether the server still knows us, the trip to
// the sign-in page (and back here), and the API reads made as us (details).

/**
 * Send the browser to the login page, coming back here afterwards.
 */
export function goToLogin() {
  const here = location.pathname + location.search + location.hash;
  location.assign(`/login?next=${encodeURIComponent(here)}`);
}

/**
 * Whether the server says this browser is not logged in (401, or a redirect to /login).
 * @returns {Promise<boolean>}
 */
export async function isLoggedOut() {
  try {
    const response = await fetch('/api/trunks', { cache: 'no-store', credentials: 'same-origin' });
    return response.status === 401 || (response.redirected && new URL(response.url).pathname === '/login');
  } catch {
    return false;
  }
}

/**
 * Fetch JSON from the API as this session; 401 means "log in", and goes there.
 * @param {string} path
 * @returns {Promise<{status: number, body: any}>}
 */
export async function getJson(path) {
  const response = await fetch(path, { credentials: 'same-origin', headers: { Accept: 'application/json' } });
  if (response.status === 401) goToLogin();
  let body = null;
  try {
    body = await response.json();
  } catch {
    body = null;
  }
  return { status: response.status, body };
}
