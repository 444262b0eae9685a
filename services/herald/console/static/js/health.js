// Health per endpoint over the last hour, computed in the browser from the
// delivery log: success rate, latency, and a small chart of both in
// five-minute buckets. Herald's API does not expose breaker state per
// endpoint, so the view shows the current failure streak instead and says
// so; endpoints Herald disabled are listed with the reason.
import { pages, tenantPath } from './api.js';
import { h, put, s, problemText, fmtMs } from './dom.js';

const HOUR = 3600e3;
const BUCKETS = 12;

// stats summarises one endpoint's attempts over [from, from+HOUR).
export function stats(attempts, from) {
  const real = attempts.filter((a) => a.outcome && a.outcome !== 'replay_requested' && new Date(a.at) >= from)
    .sort((x, y) => new Date(y.at) - new Date(x.at)); // newest first, for the streak
  const buckets = Array.from({ length: BUCKETS }, () => ({ ok: 0, bad: 0, lat: 0, n: 0 }));
  let ok = 0;
  const lats = [];
  for (const a of real) {
    const i = Math.min(BUCKETS - 1, Math.max(0, Math.floor((new Date(a.at) - from) / (HOUR / BUCKETS))));
    const b = buckets[i];
    if (a.outcome === 'delivered') { ok += 1; b.ok += 1; } else { b.bad += 1; }
    if (a.latencyMs) { lats.push(a.latencyMs); b.lat += a.latencyMs; b.n += 1; }
  }
  let streak = 0;
  for (const a of real) { if (a.outcome === 'delivered') break; streak += 1; }
  lats.sort((x, y) => x - y);
  const pct = (p) => (lats.length ? lats[Math.min(lats.length - 1, Math.floor(p * lats.length))] : null);
  return { total: real.length, ok, rate: real.length ? ok / real.length : null, p50: pct(0.5), p95: pct(0.95), streak, buckets };
}

function chart(st, label) {
  const W = 240; const H = 56; const bw = W / BUCKETS;
  const maxN = Math.max(1, ...st.buckets.map((b) => b.ok + b.bad));
  const means = st.buckets.map((b) => (b.n ? b.lat / b.n : null));
  const maxLat = Math.max(1, ...means.filter((m) => m !== null));
  const bars = st.buckets.flatMap((b, i) => {
    const x = i * bw + 1;
    const n = b.ok + b.bad;
    if (!n) return [s('rect', { class: 'bar-none', x, y: H - 2, width: bw - 2, height: 2 })];
    const hOk = (b.ok / maxN) * (H - 4);
    const hBad = (b.bad / maxN) * (H - 4);
    return [
      s('rect', { class: 'bar-ok', x, y: H - hOk, width: bw - 2, height: hOk }),
      s('rect', { class: 'bar-bad', x, y: H - hOk - hBad, width: bw - 2, height: hBad }),
    ];
  });
  const pts = means.map((m, i) => (m === null ? null : `${(i + 0.5) * bw},${H - 2 - (m / maxLat) * (H - 8)}`)).filter(Boolean);
  return s('svg', { class: 'chart', width: W, height: H, viewBox: `0 0 ${W} ${H}`, role: 'img', 'aria-label': label },
    s('title', {}, label), bars,
    pts.length > 1 ? s('polyline', { class: 'line', points: pts.join(' ') }) : null);
}

export function healthView(main) {
  const ctl = new AbortController();
  const body = h('div', {}, h('p', { class: 'muted' }, 'Reading the last hour of deliveries…'));
  main.append(h('h1', {}, 'Health'),
    h('p', { class: 'hint' }, 'Last hour, from the delivery log. Bars: attempts per five minutes (green delivered, red failed); line: mean latency.'),
    body);
  (async () => {
    const now = Date.now();
    const from = now - HOUR;
    const [subs, dels] = await Promise.all([
      pages(tenantPath('/subscriptions?limit=200'), 1000, { signal: ctl.signal }),
      pages(tenantPath(`/deliveries?since=${encodeURIComponent(new Date(from).toISOString())}&limit=500`), 5000, { signal: ctl.signal }),
    ]);
    if (subs.aborted || dels.aborted) return;
    if (!subs.ok || !dels.ok) {
      put(body, h('p', { class: 'error' }, problemText(subs.ok ? dels : subs)));
      return;
    }
    // The log lists pairs whose latest record is in the hour; their
    // attempts within it are the hour's attempts.
    const bySub = new Map();
    for (const d of dels.items) {
      if (!bySub.has(d.subscriptionId)) bySub.set(d.subscriptionId, []);
      bySub.get(d.subscriptionId).push(...(d.attempts || []));
    }
    const disabled = subs.items.filter((x) => x.status === 'disabled');
    const rows = subs.items.map((sub) => {
      const st = stats(bySub.get(sub.id) || [], from);
      const rate = st.rate === null ? '–' : `${(st.rate * 100).toFixed(st.rate === 1 ? 0 : 1)}%`;
      const label = `${sub.url}: ${st.total} attempts in the last hour, ${rate} delivered, median latency ${st.p50 === null ? 'unknown' : fmtMs(st.p50)}`;
      return h('tr', { 'data-id': sub.id },
        h('td', {}, h('div', { class: 'mono' }, sub.url), h('div', { class: 'hint' }, sub.id)),
        h('td', {}, h('span', { class: `badge ${sub.status === 'enabled' ? 'ok' : sub.status === 'disabled' ? 'bad' : 'warn'}` }, sub.status)),
        h('td', { class: 'num' }, String(st.total)),
        h('td', { class: `num ${st.rate !== null && st.rate < 0.9 ? 'bad' : ''}` }, rate),
        h('td', { class: 'num' }, st.p50 === null ? '–' : fmtMs(st.p50)),
        h('td', { class: 'num' }, st.p95 === null ? '–' : fmtMs(st.p95)),
        h('td', { class: 'num' }, st.streak ? h('span', { class: 'bad' }, String(st.streak)) : '0'),
        h('td', {}, chart(st, label)));
    });
    put(body,
      rows.length
        ? h('table', { id: 'health' },
          h('caption', { class: 'visually-hidden' }, 'Endpoint health over the last hour'),
          h('thead', {}, h('tr', {}, ['Endpoint', 'Status', 'Attempts', 'Delivered', 'p50', 'p95', 'Failing streak', 'Last hour']
            .map((c, i) => h('th', { scope: 'col', class: i >= 2 && i <= 6 ? 'num' : null }, c)))),
          h('tbody', {}, rows))
        : h('p', {}, 'No subscriptions.'),
      dels.truncated ? h('p', { class: 'hint' }, 'More than 5000 deliveries in the hour: the figures cover the newest 5000.') : null,
      h('p', { class: 'notice' }, 'Circuit-breaker state is kept in each dispatcher and is not exposed by the API; ',
        'a failing streak of consecutive non-delivered attempts is shown instead. The dispatchers\u2019 herald_breakers_open gauge counts open breakers.'),
      h('h2', {}, 'Disabled endpoints'),
      disabled.length
        ? h('ul', { id: 'disabled' }, disabled.map((x) => h('li', {}, h('span', { class: 'mono' }, x.url), ` (${x.id}): `, x.status_reason || 'no reason recorded')))
        : h('p', {}, 'None.'));
  })();
  return () => ctl.abort();
}
