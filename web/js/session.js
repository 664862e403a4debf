// The signed-in session as the page sees it: who we are (from hello), whether we may open
// details, whether the server still knows us, the trip to the sign-in page (and back here),
// and the details read as us.

/**
 * @typedef {{name: string, role: string}} User  role: admin, operator or display
 * @typedef {{kind: 'account'|'message', key: string}} DetailsTarget
 * @typedef {{status: number, body: Record<string, any>|null}} DetailsAnswer  status 0: no
 *   answer; body only on a 200 with a JSON object
 */

/** Who is signed in on this page, as hello said, and what that lets the page offer. */
export class Session {
  /**
   * @param {boolean} kiosk a wall display never offers details, whoever is signed in
   */
  constructor(kiosk) {
    this.kiosk = kiosk;
    this.greeted = false;
    /** @type {User|null} */
    this.user = null;
  }

  /**
   * Hello named who we are (or no one: a server without sign-in).
   * @param {any} hello
   */
  greet(hello) {
    const user = hello.user && typeof hello.user === 'object' ? hello.user : null;
    this.user = user ? { name: String(user.name ?? ''), role: String(user.role ?? '') } : null;
    this.greeted = true;
  }

  /**
   * Whether this sign-in may open details: never in kiosk nor as a wall display (the server
   * answers 403); null while unknown, before hello names the role.
   * @returns {boolean|null}
   */
  get detailsAllowed() {
    if (this.kiosk) return false;
    if (!this.greeted) return null;
    return this.user?.role !== 'display';
  }
}

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
 * Read an account's or a queued message's details as this session. A 401 means we are
 * signed out, and goes to the login page; no answer at all is status 0.
 * @param {DetailsTarget} target
 * @returns {Promise<DetailsAnswer>}
 */
export async function fetchDetails(target) {
  const base = target.kind === 'account' ? '/api/accounts/' : '/api/queue/';
  try {
    const response = await fetch(base + encodeURIComponent(target.key), {
      credentials: 'same-origin', headers: { Accept: 'application/json' },
    });
    if (response.status === 401) goToLogin();
    const body = response.status === 200 ? await response.json().catch(() => null) : null;
    return { status: response.status, body: body && typeof body === 'object' ? body : null };
  } catch {
    return { status: 0, body: null };
  }
}
