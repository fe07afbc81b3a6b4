/**
 * One-time links (an invitation, an account recovery) carry their token in the URL's fragment:
 * `<console>/join#token=sti_…`, `<console>/recover#token=sta_…`. A browser never sends the fragment
 * to a server, so the token is in no access log of the console, of a proxy in front of it or of the
 * API, and in no Referer; the page reads it in the browser and sends it in a POST body only.
 */

/** The link a person opens: this console's origin, the page, the token in the fragment. */
export function linkWithToken(page: '/join' | '/recover', token: string, origin: string = window.location.origin): string {
  return `${origin}${page}#token=${encodeURIComponent(token)}`;
}

/** The token in a fragment (`#token=…`), or null. */
function fromFragment(fragment: string): string | null {
  const token = new URLSearchParams(fragment.replace(/^#/, '')).get('token')?.trim();
  return token ? token : null;
}

/**
 * The token of the link this page was opened with, if any. The fragment is then removed from the
 * address bar and from this history entry, so the token does not stay in the browser's history
 * (the page keeps it in memory; opening the link again fills it again).
 */
export function takeTokenFromLocation(): string | null {
  const token = fromFragment(window.location.hash);
  if (token) window.history.replaceState(window.history.state, '', `${window.location.pathname}${window.location.search}`);
  return token;
}

/** What someone pasted: a token, or the whole link (its fragment's token is taken). */
export function tokenFromInput(value: string): string {
  const trimmed = value.trim();
  const hash = trimmed.indexOf('#');
  return hash >= 0 ? (fromFragment(trimmed.slice(hash)) ?? '') : trimmed;
}
