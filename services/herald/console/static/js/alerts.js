// Alerts and operations, read from GET /v1/tenants/{t}/alerts,
// .../alerts/{id} and .../operations/{protocol}. A Herald without these
// routes answers a plain 404; the view then says they are not available
// rather than failing, so the console works across versions.
import { api, tenantPath } from './api.js';
import { h, put, field, problemText, fmtTime } from './dom.js';

function notAvailable(what) {
  return h('p', { class: 'notice', 'data-state': 'not-available' },
    `${what} is not available on this Herald server (the API has no such route yet).`);
}

function pick(o, ...keys) {
  for (const k of keys) if (o && o[k] !== undefined && o[k] !== null && o[k] !== '') return o[k];
  return '';
}

// raw shows a whole answer, for fields this console does not know.
function raw(data) {
  return h('details', {}, h('summary', {}, 'Full record (JSON)'), h('pre', {}, JSON.stringify(data, null, 2)));
}

function list(data, ...keys) {
  if (Array.isArray(data)) return data;
  for (const k of keys) if (Array.isArray(data && data[k])) return data[k];
  return [];
}

export function alertsView(main) {
  const ctl = new AbortController();
  const state = field('State', h('select', { id: 'alert-state' },
    h('option', { value: 'open' }, 'Open'), h('option', { value: '' }, 'All'), h('option', { value: 'resolved' }, 'Resolved')));
  const alerts = h('div', { id: 'alerts', 'aria-live': 'polite' });
  const detail = h('section', { id: 'alert-detail', 'aria-label': 'Alert history', hidden: true });
  const proto = field('Protocol UUID', h('input', { type: 'text', id: 'protocol', required: true, spellcheck: 'false', autocomplete: 'off' }),
    'The protocol UUID of an asynchronous device operation.');
  const opOut = h('div', { id: 'operation', 'aria-live': 'polite' });
  const opForm = h('form', { class: 'panel', 'aria-labelledby': 'op-h' },
    h('h2', { id: 'op-h' }, 'Operation by protocol UUID'), proto.wrap, h('button', { type: 'submit' }, 'Look up'), opOut);

  main.append(h('h1', {}, 'Alerts and operations'),
    h('section', { 'aria-labelledby': 'alerts-h' }, h('h2', { id: 'alerts-h' }, 'Alerts'), state.wrap, alerts, detail),
    opForm);

  const showAlert = async (id) => {
    detail.hidden = false;
    put(detail, h('p', { class: 'muted' }, 'Loading…'));
    const res = await api('GET', tenantPath(`/alerts/${encodeURIComponent(id)}`), undefined, { signal: ctl.signal });
    if (res.aborted) return;
    if (!res.ok) {
      put(detail, res.notAvailable ? notAvailable('The alert history') : h('p', { class: 'error' }, problemText(res)));
      return;
    }
    const a = res.data.alert || res.data;
    const transitions = list(res.data, 'transitions', 'history');
    const notes = list(res.data, 'notifications');
    const heading = h('h2', { tabindex: '-1' }, `Alert ${pick(a, 'alertId', 'id') || id}: ${pick(a, 'title')}`);
    put(detail, heading,
      h('p', {}, `State ${pick(a, 'state')}, since ${fmtTime(pick(a, 'stateUpdatedAt', 'state_updated_at', 'updated_at'))}`),
      pick(a, 'text') ? h('p', {}, a.text) : null,
      h('h3', {}, 'Transitions'),
      transitions.length
        ? h('ol', { id: 'transitions' }, transitions.map((t) => h('li', {},
          `${fmtTime(pick(t, 'at', 'time', 'stateUpdatedAt'))}: `,
          [pick(t, 'from'), pick(t, 'to', 'state')].filter(Boolean).join(' → ') || pick(t, 'type'),
          pick(t, 'sequence') !== '' ? ` (sequence ${t.sequence})` : '')))
        : h('p', {}, 'No transitions recorded.'),
      h('h3', {}, 'Notifications sent'),
      notes.length
        ? h('ul', {}, notes.map((n) => h('li', {}, typeof n === 'string' ? n : `${pick(n, 'type')} ${pick(n, 'id')} ${fmtTime(pick(n, 'time', 'at'))}`)))
        : h('p', {}, 'None recorded.'),
      raw(res.data));
    heading.focus();
  };

  const loadAlerts = async () => {
    put(alerts, h('p', { class: 'muted' }, 'Loading…'));
    const qs = state.control.value ? `?state=${encodeURIComponent(state.control.value)}` : '';
    const res = await api('GET', tenantPath(`/alerts${qs}`), undefined, { signal: ctl.signal });
    if (res.aborted) return;
    if (!res.ok) {
      put(alerts, res.notAvailable ? notAvailable('The alert list') : h('p', { class: 'error' }, problemText(res)));
      return;
    }
    const items = list(res.data, 'items', 'alerts');
    if (!items.length) {
      put(alerts, h('p', {}, state.control.value ? `No ${state.control.value} alerts.` : 'No alerts.'));
      return;
    }
    put(alerts, h('table', {},
      h('thead', {}, h('tr', {}, ['Alert', 'Title', 'State', 'Since', ''].map((c) => h('th', { scope: 'col' }, c)))),
      h('tbody', {}, items.map((a) => {
        const id = pick(a, 'alertId', 'id');
        const btn = h('button', { type: 'button' }, 'History');
        btn.addEventListener('click', () => showAlert(id));
        return h('tr', {}, h('td', { class: 'mono' }, id), h('td', {}, pick(a, 'title')), h('td', {}, pick(a, 'state')),
          h('td', {}, fmtTime(pick(a, 'stateUpdatedAt', 'state_updated_at', 'updated_at'))), h('td', {}, btn));
      }))));
  };
  state.control.addEventListener('change', loadAlerts);
  loadAlerts();

  opForm.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    const id = proto.control.value.trim();
    if (!id) { proto.control.focus(); return; }
    put(opOut, h('p', { class: 'muted' }, 'Loading…'));
    const res = await api('GET', tenantPath(`/operations/${encodeURIComponent(id)}`), undefined, { signal: ctl.signal });
    if (res.aborted) return;
    if (!res.ok) {
      put(opOut, res.notAvailable ? notAvailable('Operation lookup') : h('p', { class: 'error' }, problemText(res)));
      return;
    }
    const o = res.data.operation || res.data;
    put(opOut,
      h('p', {}, h('strong', {}, `${pick(o, 'state', 'status') || 'unknown'}`), pick(o, 'late') ? ' (late)' : '',
        ` · ${pick(o, 'operation', 'kind')} on ${pick(o, 'router', 'routerId', 'router_id', 'subject')}`),
      h('p', { class: 'hint' }, `requested ${fmtTime(pick(o, 'requestedAt', 'requested_at', 'createdAt'))}; deadline ${fmtTime(pick(o, 'deadline'))}`),
      raw(res.data));
  });
  return () => ctl.abort();
}
