// The console's only way to Herald: the public HTTP API, with the token
// kept in sessionStorage (gone when the tab closes).

const TOKEN = 'herald.token';
const TENANT = 'herald.tenant';

export const session = {
  get token() { return sessionStorage.getItem(TOKEN) || ''; },
  set token(v) { if (v) sessionStorage.setItem(TOKEN, v); else sessionStorage.removeItem(TOKEN); },
  get tenant() { return sessionStorage.getItem(TENANT) || ''; },
  set tenant(v) { if (v) sessionStorage.setItem(TENANT, v); else sessionStorage.removeItem(TENANT); },
};

// api calls Herald and never throws: the result says what happened.
//   ok, status, data     the answer
//   problem              an RFC 9457 problem document, when the API sent one
//   notAvailable         404 without a problem document: the route does not
//                        exist on this server (an older Herald)
//   error                the request did not complete
export async function api(method, path, body, { signal } = {}) {
  const headers = { Authorization: `Bearer ${session.token}`, Accept: 'application/json' };
  const init = { method, headers, signal, cache: 'no-store', credentials: 'omit' };
  if (body !== undefined) {
    headers['Content-Type'] = 'application/json';
    init.body = JSON.stringify(body);
  }
  let resp;
  try {
    resp = await fetch(path, init);
  } catch (e) {
    if (e.name === 'AbortError') return { ok: false, aborted: true, status: 0 };
    return { ok: false, status: 0, error: `Herald did not answer: ${e.message}` };
  }
  const type = resp.headers.get('Content-Type') || '';
  const out = { ok: resp.ok, status: resp.status };
  const text = await resp.text().catch(() => '');
  if (type.startsWith('application/problem+json')) {
    try { out.problem = JSON.parse(text); } catch { out.problem = { title: text }; }
  } else if (type.startsWith('application/json') && text) {
    try { out.data = JSON.parse(text); } catch { out.error = 'the answer is not JSON'; }
  } else if (!resp.ok) {
    out.error = text.trim() || `HTTP ${resp.status}`;
  }
  out.notAvailable = resp.status === 404 && !out.problem;
  if (resp.status === 401) window.dispatchEvent(new CustomEvent('herald-unauthorized'));
  return out;
}

export function tenantPath(rest) {
  return `/v1/tenants/${encodeURIComponent(session.tenant)}${rest}`;
}

// pages reads up to max items of a paginated list.
export async function pages(path, max, opts) {
  const items = [];
  let cursor = '';
  for (;;) {
    const sep = path.includes('?') ? '&' : '?';
    const res = await api('GET', cursor ? `${path}${sep}cursor=${encodeURIComponent(cursor)}` : path, undefined, opts);
    if (!res.ok) return { ...res, items };
    items.push(...(res.data.items || []));
    cursor = res.data.next_cursor;
    if (!cursor || items.length >= max) return { ok: true, status: 200, items, truncated: Boolean(cursor) };
  }
}
