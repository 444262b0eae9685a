// Subscriptions: the list, the create form, pause/resume, secret rotation
// and test calls. A secret is shown once, in a panel the user dismisses; it
// is never stored, and the API redacts it everywhere else.
import { api, pages, tenantPath } from './api.js';
import { h, put, field, setFieldError, announce, problemText, fmtTime } from './dom.js';

// catalog returns the event types Herald knows, or null when this server
// has no catalog (GET /v1/event-types answers 404): the form then takes
// free text only.
export async function catalog() {
  const res = await api('GET', '/v1/event-types');
  if (!res.ok) return { types: null, res };
  const list = Array.isArray(res.data) ? res.data : (res.data.items || res.data.event_types || []);
  const types = list.map((t) => (typeof t === 'string' ? { name: t } : { name: t.name || t.type, description: t.description }))
    .filter((t) => t.name);
  return { types, res };
}

export function subscriptionsView(main) {
  const listRegion = h('section', { 'aria-labelledby': 'subs-h' });
  const outcome = h('div', { 'aria-live': 'polite' });
  main.append(
    h('h1', {}, 'Subscriptions'),
    outcome,
    listRegion,
    createForm(outcome, () => loadList(listRegion, outcome)),
  );
  loadList(listRegion, outcome);
}

// loadList (re)renders the list; focus names a row's button to give the
// keyboard focus back to after the re-render ({ id, action }).
async function loadList(region, outcome, focus) {
  put(region, h('h2', { id: 'subs-h' }, 'Endpoints'), h('p', { class: 'muted' }, 'Loading…'));
  const res = await pages(tenantPath('/subscriptions?limit=200'), 1000);
  if (!res.ok) {
    put(region, h('h2', { id: 'subs-h' }, 'Endpoints'), h('p', { class: 'error' }, problemText(res)));
    return;
  }
  const rows = res.items.map((sub) => subscriptionRow(sub, outcome, (f) => loadList(region, outcome, f)));
  put(region, h('h2', { id: 'subs-h' }, 'Endpoints'),
    rows.length === 0
      ? h('p', { id: 'subs-empty' }, 'No subscriptions yet: create one below.')
      : h('table', { id: 'subscriptions' },
        h('caption', { class: 'visually-hidden' }, 'Subscriptions of this tenant'),
        h('thead', {}, h('tr', {}, ['URL', 'Event types', 'Filter', 'Status', 'Created', 'Actions'].map((c) => h('th', { scope: 'col' }, c)))),
        h('tbody', {}, rows)),
    res.truncated ? h('p', { class: 'hint' }, 'Showing the first 1000.') : null);
  if (focus) {
    const btn = region.querySelector(`tr[data-id="${CSS.escape(focus.id)}"] [data-action="${focus.action}"]`);
    if (btn) btn.focus();
  }
}

function statusBadge(sub) {
  const cls = sub.status === 'enabled' ? 'ok' : sub.status === 'disabled' ? 'bad' : 'warn';
  return [h('span', { class: `badge ${cls}` }, sub.status), sub.status_reason ? h('div', { class: 'hint' }, sub.status_reason) : null];
}

function subscriptionRow(sub, outcome, reload) {
  const act = async (btn, label, path) => {
    btn.disabled = true;
    const res = await api('POST', tenantPath(`/subscriptions/${encodeURIComponent(sub.id)}${path}`));
    btn.disabled = false;
    if (!res.ok) {
      put(outcome, h('p', { class: 'error', role: 'alert' }, `${label} ${sub.id}: ${problemText(res)}`));
      return null;
    }
    return res.data;
  };
  const pause = h('button', { type: 'button', 'data-action': 'pause' }, sub.status === 'enabled' ? 'Pause' : 'Resume');
  pause.addEventListener('click', async () => {
    const verb = sub.status === 'enabled' ? 'pause' : 'resume';
    if (await act(pause, verb === 'pause' ? 'Pause' : 'Resume', `/${verb}`)) {
      announce(`Subscription ${sub.id} ${verb === 'pause' ? 'paused' : 'resumed'}`);
      reload({ id: sub.id, action: 'pause' });
    }
  });
  const rotate = h('button', { type: 'button', 'data-action': 'rotate' }, 'Rotate secret');
  rotate.addEventListener('click', async () => {
    const data = await act(rotate, 'Rotate secret of', '/rotate-secret');
    if (data && data.secret) put(outcome, secretPanel(sub.id, data.secret, 'New signing secret', rotate));
  });
  const test = h('button', { type: 'button', 'data-action': 'test' }, 'Send test');
  test.addEventListener('click', async () => {
    put(outcome, h('p', {}, h('progress', { 'aria-label': `Test call to ${sub.id}` }), ' Calling the endpoint…'));
    const data = await act(test, 'Test call to', '/test');
    if (data) put(outcome, testResult(sub, data));
  });
  return h('tr', { 'data-id': sub.id },
    h('td', {}, h('div', { class: 'mono' }, sub.url), h('div', { class: 'hint' }, sub.id, sub.description ? ` · ${sub.description}` : '')),
    h('td', {}, (sub.events || []).join(', ')),
    h('td', {}, sub.filter ? h('code', {}, sub.filter) : h('span', { class: 'muted' }, 'none')),
    h('td', {}, statusBadge(sub)),
    h('td', {}, fmtTime(sub.created_at)),
    h('td', {}, h('div', { class: 'actions' },
      h('a', { href: `#/subscriptions/${encodeURIComponent(sub.id)}/deliveries` }, 'Deliveries'),
      pause, rotate, test)));
}

function testResult(sub, r) {
  const head = r.delivered
    ? h('p', { class: 'ok' }, `Test call to ${sub.id}: the receiver answered ${r.status} in ${r.latency_ms} ms.`)
    : h('p', { class: 'bad' }, `Test call to ${sub.id} failed: ${r.error || `the receiver answered ${r.status}`} (${r.latency_ms} ms).`);
  return h('section', { class: 'panel', id: 'test-result', 'aria-label': 'Test call result' },
    head,
    r.webhook_id ? h('p', { class: 'hint' }, `webhook-id ${r.webhook_id}`) : null,
    r.body ? [h('p', { class: 'hint' }, 'First bytes of the answer:'), h('pre', {}, r.body)] : null);
}

// secretPanel shows a secret once. Dismissing it removes it from the page
// and returns focus to where the user was.
function secretPanel(subID, secret, title, returnFocus) {
  const code = h('code', { id: 'secret-value' }, secret);
  const copy = h('button', { type: 'button' }, 'Copy');
  copy.addEventListener('click', async () => {
    try {
      await navigator.clipboard.writeText(code.textContent);
      announce('Secret copied');
    } catch {
      const range = document.createRange();
      range.selectNodeContents(code);
      getSelection().removeAllRanges();
      getSelection().addRange(range);
      announce('Secret selected: copy it with your keyboard');
    }
  });
  const done = h('button', { type: 'button', class: 'primary', 'data-action': 'dismiss-secret' }, 'I have stored it');
  const panel = h('section', { class: 'secret', role: 'alert', 'aria-labelledby': 'secret-h' },
    h('h2', { id: 'secret-h' }, `${title} for ${subID}`),
    h('p', {}, 'Shown once: Herald keeps only a sealed copy and will not show it again. Receivers verify webhook-signature with it.'),
    h('p', {}, code),
    h('div', { class: 'actions' }, copy, done));
  done.addEventListener('click', () => {
    code.textContent = '';
    panel.remove();
    if (returnFocus && returnFocus.isConnected) returnFocus.focus();
  });
  setTimeout(() => done.focus(), 0);
  return panel;
}

function createForm(outcome, reload) {
  const url = field('Endpoint URL', h('input', { type: 'url', name: 'url', required: true, placeholder: 'https://example.com/webhooks' }),
    'Where Herald POSTs signed notifications.');
  const typesBox = h('fieldset', { id: 'event-types' }, h('legend', {}, 'Event types'), h('p', { class: 'muted' }, 'Loading the catalog…'));
  const other = field('Event types or patterns', h('input', { type: 'text', name: 'events', spellcheck: 'false', placeholder: 'alert.*, server.rebooted' }),
    'Comma-separated: exact types, prefix patterns such as alert.* or * for all.');
  const filter = field('Filter (CEL, optional)', h('textarea', { name: 'filter', rows: 2, spellcheck: 'false', placeholder: 'data.severity == "Critical"' }),
    'Over id, source, type, subject, time, tenant and data. Herald checks it when you create the subscription.');
  const include = h('input', { type: 'checkbox', name: 'include_subaccounts', id: 'include-sub' });
  const authType = field('Endpoint authentication', h('select', { name: 'auth_type' },
    h('option', { value: 'none' }, 'None (HMAC signature only)'),
    h('option', { value: 'basic' }, 'HTTP basic'),
    h('option', { value: 'bearer' }, 'Bearer token')),
  'Every request is signed (Standard Webhooks) whatever you choose here.');
  const username = field('Username', h('input', { type: 'text', name: 'username', autocomplete: 'off' }));
  const password = field('Password', h('input', { type: 'password', name: 'password', autocomplete: 'new-password' }));
  const token = field('Token', h('input', { type: 'password', name: 'token', autocomplete: 'off' }));
  const description = field('Description (optional)', h('input', { type: 'text', name: 'description' }));
  const summary = h('div', { 'aria-live': 'assertive' });
  const submit = h('button', { type: 'submit', class: 'primary' }, 'Create subscription');

  const showAuth = () => {
    const t = authType.control.value;
    username.wrap.hidden = password.wrap.hidden = t !== 'basic';
    token.wrap.hidden = t !== 'bearer';
  };
  authType.control.addEventListener('change', showAuth);
  showAuth();

  const form = h('form', { class: 'panel', id: 'create-subscription', 'aria-labelledby': 'create-h', novalidate: true },
    h('h2', { id: 'create-h' }, 'New subscription'),
    url.wrap, typesBox, other.wrap, filter.wrap,
    h('div', { class: 'field inline' }, include, h('label', { for: 'include-sub' }, 'Include sub-accounts\u2019 notifications')),
    authType.wrap, username.wrap, password.wrap, token.wrap, description.wrap,
    summary, submit);

  catalog().then(({ types, res }) => {
    if (!types) {
      put(typesBox, h('legend', {}, 'Event types'),
        h('p', { class: 'notice', id: 'catalog-absent' }, res.notAvailable
          ? 'This Herald has no event-type catalog (GET /v1/event-types is not available): type the event types below.'
          : `The event-type catalog could not be read (${problemText(res)}): type the event types below.`));
      return;
    }
    put(typesBox, h('legend', {}, 'Event types from the catalog'),
      h('div', { class: 'types' }, types.map((t) => {
        const id = `type-${t.name.replace(/[^a-zA-Z0-9_-]/g, '_')}`;
        return h('div', {}, h('input', { type: 'checkbox', id, name: 'type', value: t.name }),
          ' ', h('label', { for: id, title: t.description || '' }, t.name));
      })));
  });

  const fields = { '/url': url, '/events': other, '/filter': filter, '/auth/type': authType, '/auth/username': username,
    '/auth/password': password, '/auth/token': token, '/description': description };

  form.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    for (const f of Object.values(fields)) setFieldError(f, '');
    put(summary);
    const events = [...form.querySelectorAll('input[name=type]:checked')].map((c) => c.value)
      .concat(other.control.value.split(',').map((x) => x.trim()).filter(Boolean));
    const body = { url: url.control.value.trim(), events };
    if (filter.control.value.trim()) body.filter = filter.control.value.trim();
    if (include.checked) body.include_subaccounts = true;
    if (description.control.value.trim()) body.description = description.control.value.trim();
    const t = authType.control.value;
    if (t === 'basic') body.auth = { type: t, username: username.control.value, password: password.control.value };
    if (t === 'bearer') body.auth = { type: t, token: token.control.value };
    submit.disabled = true;
    const res = await api('POST', tenantPath('/subscriptions'), body);
    submit.disabled = false;
    if (res.ok) {
      form.reset();
      password.control.value = '';
      token.control.value = '';
      showAuth();
      put(outcome, secretPanel(res.data.id, res.data.secret, 'Signing secret', url.control));
      announce(`Subscription ${res.data.id} created`);
      reload();
      return;
    }
    // Each field error goes under its field; the rest above the button.
    const rest = [];
    let first = null;
    for (const e of (res.problem && res.problem.errors) || []) {
      const key = Object.keys(fields).find((k) => e.pointer === k || e.pointer.startsWith(`${k}/`));
      if (key) {
        const f = fields[key];
        setFieldError(f, f.err.hidden ? e.detail : `${f.err.textContent}; ${e.detail}`);
        first = first || f.control;
      } else {
        rest.push(`${e.pointer}: ${e.detail}`);
      }
    }
    put(summary, h('p', { class: 'error', role: 'alert' },
      `Not created: ${(res.problem && (res.problem.detail || res.problem.title)) || problemText(res)}`),
    rest.length ? h('ul', { class: 'error' }, rest.map((r) => h('li', {}, r))) : null);
    (first || submit).focus();
  });
  return form;
}
