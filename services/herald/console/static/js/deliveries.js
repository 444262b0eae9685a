// Deliveries of one subscription: a live list (the delivery log polled
// every two seconds; one row per pair, a notification for this
// subscription), a pair's attempt history, retry of one pair and replay of
// a time range with its progress.
import { api, tenantPath } from './api.js';
import { h, put, announce, problemText, fmtTime, fmtMs, field } from './dom.js';

const POLL_MS = 2000;
const FINAL = new Set(['delivered', 'failed', 'dead_lettered']);
const RETRYABLE = new Set(['retrying', 'failed', 'dead_lettered']);

// lastTry is the pair's latest attempt that reached the endpoint (a replay
// request is not one), for its status, latency and answer.
export function lastTry(d) {
  const tries = (d.attempts || []).filter((a) => a.outcome !== 'replay_requested');
  return tries[tries.length - 1] || {};
}

// version changes whenever the pair gets a new attempt record.
function version(d) {
  const last = (d.attempts || [])[d.attempts.length - 1] || {};
  return `${d.state}|${(d.attempts || []).length}|${last.at}`;
}

function outcomeBadge(outcome) {
  const cls = outcome === 'delivered' ? 'ok' : (outcome === 'retrying' || outcome === 'replay_requested') ? 'warn' : 'bad';
  return h('span', { class: `badge ${cls}` }, (outcome || '').replace('_', ' '));
}

export function deliveriesView(main, [subID]) {
  const ctl = new AbortController();
  const timers = new Set();
  const later = (fn, ms) => { const t = setTimeout(() => { timers.delete(t); fn(); }, ms); timers.add(t); };
  const q = (extra) => tenantPath(`/deliveries?subscription=${encodeURIComponent(subID)}${extra}`);

  const live = h('input', { type: 'checkbox', id: 'live', checked: true });
  const liveState = h('span', { class: 'hint', id: 'live-state' });
  const tableBody = h('tbody', {});
  const table = h('table', { id: 'deliveries', 'aria-describedby': 'live-state' },
    h('caption', { class: 'visually-hidden' }, `Deliveries of ${subID}, newest first`),
    h('thead', {}, h('tr', {}, ['Time', 'Notification', 'Attempt', 'Outcome', 'Status', 'Latency', 'Response', 'Actions']
      .map((c, i) => h('th', { scope: 'col', class: i === 2 || i === 4 || i === 5 ? 'num' : null }, c)))),
    tableBody);
  const empty = h('p', { id: 'deliveries-empty' }, 'No delivery yet: new attempts appear here as they happen.');
  const feedback = h('div', { 'aria-live': 'polite' });
  const history = h('section', { id: 'history', 'aria-label': 'Attempt history', hidden: true });
  const subTitle = h('p', { class: 'hint mono' });

  main.append(
    h('p', {}, h('a', { href: '#/subscriptions' }, '← Subscriptions')),
    h('h1', {}, `Deliveries of ${subID}`), subTitle,
    h('div', { class: 'field inline' }, live, h('label', { for: 'live' }, 'Live updates'), liveState),
    feedback, empty, table, history, replayForm(subID, ctl.signal, later));
  table.hidden = true;

  api('GET', tenantPath(`/subscriptions/${encodeURIComponent(subID)}`), undefined, { signal: ctl.signal }).then((res) => {
    if (res.ok) subTitle.textContent = `${res.data.url} · ${res.data.status}${res.data.status_reason ? ` (${res.data.status_reason})` : ''}`;
    else if (!res.aborted) subTitle.textContent = problemText(res);
  });

  let first = true;
  const poll = async () => {
    if (!live.checked) return;
    const res = await api('GET', q('&limit=200'), undefined, { signal: ctl.signal });
    if (res.aborted) return;
    if (!res.ok) {
      liveState.textContent = `Could not read deliveries: ${problemText(res)}`;
    } else {
      render(res.data.items || []);
      liveState.textContent = `Updated ${new Date().toLocaleTimeString()}; refreshing every ${POLL_MS / 1000} s.`;
    }
    later(poll, POLL_MS);
  };

  // Rows are kept by pair and replaced only when the pair has a new
  // attempt, so a poll does not take the keyboard focus away from a row.
  const rowsByPair = new Map(); // notification id -> { version, tr }
  const render = (items) => {
    let fresh = 0;
    const ids = new Set();
    const rows = items.map((d) => {
      ids.add(d.notificationId);
      const old = rowsByPair.get(d.notificationId);
      const v = version(d);
      if (old && old.version === v) return old.tr;
      if (!first) fresh += 1;
      const tr = row(d, !first);
      if (old) {
        const action = old.tr.contains(document.activeElement) && document.activeElement.dataset.action;
        old.tr.replaceWith(tr);
        if (action) {
          const same = tr.querySelector(`[data-action=${action}]`);
          (same && !same.disabled ? same : tr.querySelector('[data-action=history]')).focus();
        }
      }
      rowsByPair.set(d.notificationId, { version: v, tr });
      if (history.dataset.pair === d.notificationId) {
        const inside = history.contains(document.activeElement);
        showHistory(d);
        if (inside) history.querySelector('h2').focus();
      }
      return tr;
    });
    rows.forEach((tr, i) => {
      if (tableBody.children[i] !== tr) tableBody.insertBefore(tr, tableBody.children[i] || null);
    });
    while (tableBody.children.length > rows.length) tableBody.lastElementChild.remove();
    for (const id of rowsByPair.keys()) if (!ids.has(id)) rowsByPair.delete(id);
    table.hidden = rows.length === 0;
    empty.hidden = rows.length !== 0;
    if (fresh) announce(`${fresh} deliver${fresh > 1 ? 'ies' : 'y'} updated`);
    first = false;
  };

  const row = (d, isNew) => {
    const hist = h('button', { type: 'button', 'data-action': 'history' }, 'History');
    hist.addEventListener('click', () => { showHistory(d); history.querySelector('h2').focus(); });
    const retry = h('button', { type: 'button', 'data-action': 'retry', disabled: !RETRYABLE.has(d.state) }, 'Retry');
    // While the request runs the button is aria-disabled, not disabled,
    // so that it keeps the keyboard focus.
    retry.addEventListener('click', async () => {
      if (retry.getAttribute('aria-disabled') === 'true') return;
      retry.setAttribute('aria-disabled', 'true');
      const res = await api('POST', tenantPath(`/deliveries/${encodeURIComponent(d.pair)}/retry`), undefined, { signal: ctl.signal });
      if (res.ok) {
        put(feedback, h('p', { class: 'ok' }, `Retry of ${d.notificationId} queued (${res.data.replay}).`));
        announce('Retry queued');
      } else if (!res.aborted) {
        retry.removeAttribute('aria-disabled');
        put(feedback, h('p', { class: 'error', role: 'alert' }, `Retry of ${d.notificationId}: ${problemText(res)}`));
      }
    });
    const a = lastTry(d);
    const last = (d.attempts || [])[d.attempts.length - 1] || {};
    const snippet = a.responseSnippet || a.error || '';
    return h('tr', { class: isNew ? 'row-new' : null, 'data-pair': d.pair, 'data-outcome': d.state },
      h('td', {}, fmtTime(last.at)),
      h('td', {}, h('div', {}, d.notificationType), h('div', { class: 'hint mono' }, d.notificationId)),
      h('td', { class: 'num' }, a.attempt ? String(a.attempt) : '–', last.replay ? h('div', { class: 'hint' }, 'replay') : null),
      h('td', {}, outcomeBadge(d.state), a.errorClass ? h('div', { class: 'hint' }, a.errorClass) : null),
      h('td', { class: 'num' }, a.statusCode ? String(a.statusCode) : '–'),
      h('td', { class: 'num' }, a.latencyMs ? fmtMs(a.latencyMs) : '–'),
      h('td', {}, h('div', { class: 'snippet mono', title: snippet }, snippet)),
      h('td', {}, h('div', { class: 'actions' }, hist, retry)));
  };

  // The pair's whole story is in its log entry: every attempt, oldest first.
  const showHistory = (d) => {
    history.hidden = false;
    history.dataset.pair = d.notificationId;
    const close = h('button', { type: 'button' }, 'Close history');
    close.addEventListener('click', () => { history.hidden = true; delete history.dataset.pair; put(history); });
    put(history, h('h2', { id: 'history-h', tabindex: '-1' }, `Attempts of ${d.notificationId}`),
      h('p', { class: 'hint mono' }, `webhook-id ${d.pair || ''}${d.url ? ` · ${d.url}` : ''}`),
      h('table', { id: 'history-table' },
        h('thead', {}, h('tr', {}, ['Time', 'Attempt', 'Outcome', 'Status', 'Latency', 'Error', 'Response'].map((c) => h('th', { scope: 'col' }, c)))),
        h('tbody', {}, (d.attempts || []).map((x) => h('tr', {},
          h('td', {}, fmtTime(x.at)),
          h('td', { class: 'num' }, String(x.attempt || 0), x.replay ? ' (replay)' : ''),
          h('td', {}, outcomeBadge(x.outcome)),
          h('td', { class: 'num' }, x.statusCode ? String(x.statusCode) : '–'),
          h('td', { class: 'num' }, x.latencyMs ? fmtMs(x.latencyMs) : '–'),
          h('td', {}, [x.errorClass, x.error].filter(Boolean).join(': ')),
          h('td', {}, x.responseSnippet ? h('pre', {}, x.responseSnippet) : ''))))),
      close);
  };

  live.addEventListener('change', () => { if (live.checked) poll(); else liveState.textContent = 'Paused.'; });
  poll();
  return () => { ctl.abort(); for (const t of timers) clearTimeout(t); };
}

function localInput(d) {
  const p = (n) => String(n).padStart(2, '0');
  return `${d.getFullYear()}-${p(d.getMonth() + 1)}-${p(d.getDate())}T${p(d.getHours())}:${p(d.getMinutes())}`;
}

// replayForm re-sends the subscription's pairs of a time range. Progress is
// the pairs of this replay that reached a final outcome since it started,
// read from the delivery log.
function replayForm(subID, signal, later) {
  const now = new Date();
  const since = field('From', h('input', { type: 'datetime-local', required: true, value: localInput(new Date(now - 3600e3)) }));
  const until = field('To', h('input', { type: 'datetime-local', required: true, value: localInput(new Date(now.getTime() + 60e3)) }));
  const onlyFailed = h('input', { type: 'checkbox', id: 'only-failed' });
  const progress = h('div', { 'aria-live': 'polite', id: 'replay-progress' });
  const submit = h('button', { type: 'submit' }, 'Replay');
  const form = h('form', { class: 'panel', id: 'replay', 'aria-labelledby': 'replay-h' },
    h('h2', { id: 'replay-h' }, 'Replay a time range'),
    h('p', { class: 'hint' }, 'Re-sends every notification of the range to this endpoint, as a new attempt recorded in the audit trail.'),
    since.wrap, until.wrap,
    h('div', { class: 'field inline' }, onlyFailed, h('label', { for: 'only-failed' }, 'Only failed deliveries')),
    submit, progress);
  form.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    const from = new Date(since.control.value);
    const to = new Date(until.control.value);
    if (Number.isNaN(from.getTime()) || Number.isNaN(to.getTime())) {
      put(progress, h('p', { class: 'error' }, 'Give both times.'));
      return;
    }
    submit.disabled = true;
    const started = new Date(Date.now() - 1000).toISOString();
    put(progress, h('label', { for: 'replay-bar' }, 'Queueing the replay… '), h('progress', { id: 'replay-bar' }));
    const res = await api('POST', tenantPath(`/subscriptions/${encodeURIComponent(subID)}/replay`),
      { since: from.toISOString(), until: to.toISOString(), only_failed: onlyFailed.checked }, { signal });
    submit.disabled = false;
    if (res.aborted) return;
    if (!res.ok) {
      put(progress, h('p', { class: 'error', role: 'alert' }, `Replay refused: ${problemText(res)}`));
      return;
    }
    const total = res.data.pairs;
    if (!total) {
      put(progress, h('p', {}, 'Nothing to replay in that range.'));
      return;
    }
    const bar = h('progress', { id: 'replay-bar', max: total, value: 0 });
    const text = h('span', {}, `0 of ${total} delivered or settled`);
    put(progress, h('label', { for: 'replay-bar' }, `Replay ${res.data.replay}: `), bar, ' ', text);
    const track = async () => {
      const r = await api('GET', tenantPath(`/deliveries?subscription=${encodeURIComponent(subID)}&since=${encodeURIComponent(started)}&limit=500`), undefined, { signal });
      if (r.aborted) return;
      if (r.ok) {
        // A pair of this replay is done when its latest record, a replayed
        // attempt, is final.
        const done = new Set((r.data.items || []).filter((d) => {
          const last = (d.attempts || [])[d.attempts.length - 1] || {};
          return last.replay && FINAL.has(d.state);
        }).map((d) => d.notificationId));
        bar.value = Math.min(done.size, total);
        text.textContent = `${bar.value} of ${total} delivered or settled`;
        if (done.size >= total) { announce('Replay finished'); return; }
      }
      later(track, POLL_MS);
    };
    track();
  });
  return form;
}
