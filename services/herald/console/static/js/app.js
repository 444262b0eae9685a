// The console's shell: sign-in, tenant choice and the hash router. Each
// view is a function (main, params) that renders into main and may return
// a stop function, called when the user leaves the view (it ends polls).
import { pages, session } from './api.js';
import { h, put, field, announce, problemText } from './dom.js';
import { subscriptionsView } from './subscriptions.js';
import { deliveriesView } from './deliveries.js';
import { healthView } from './health.js';
import { alertsView } from './alerts.js';
import { auditView } from './audit.js';

const routes = [
  [/^#\/subscriptions$/, subscriptionsView, 'Subscriptions'],
  [/^#\/subscriptions\/([^/]+)\/deliveries$/, deliveriesView, 'Deliveries'],
  [/^#\/health$/, healthView, 'Health'],
  [/^#\/alerts$/, alertsView, 'Alerts and operations'],
  [/^#\/audit$/, auditView, 'Audit'],
];

const main = document.getElementById('main');
let stopView = null;

function signInView() {
  const token = field('Admin token or tenant API key', h('input', {
    type: 'password', autocomplete: 'off', required: true, spellcheck: 'false',
  }), 'Kept in this tab only (sessionStorage) and sent as a bearer token to the Herald API.');
  const form = h('form', { class: 'panel', 'aria-labelledby': 'signin-h' },
    h('h1', { id: 'signin-h' }, 'Sign in to Herald'),
    token.wrap,
    h('button', { type: 'submit', class: 'primary' }, 'Sign in'));
  form.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    session.token = token.control.value.trim();
    token.control.value = '';
    const refused = await start();
    if (refused) {
      session.token = '';
      token.err.textContent = refused;
      token.err.hidden = false;
      token.control.setAttribute('aria-invalid', 'true');
      token.control.focus();
    }
  });
  put(main, form);
  token.control.focus();
  return token;
}

let signIn = null;

// start loads the tenants the credential can see. It returns why the
// credential was refused, or '' when the console is ready.
async function start() {
  const res = await pages('/v1/tenants?limit=200', 2000);
  if (!res.ok) return res.status === 401 ? 'Herald refused this token.' : problemText(res);
  const select = document.getElementById('tenant');
  const ids = res.items.map((t) => t.id).sort();
  put(select, ...res.items
    .slice().sort((a, b) => a.id.localeCompare(b.id))
    .map((t) => h('option', { value: t.id }, t.name && t.name !== t.id ? `${t.id} (${t.name})` : t.id)));
  if (!ids.includes(session.tenant)) session.tenant = ids[0] || '';
  select.value = session.tenant;
  document.getElementById('nav').hidden = false;
  document.getElementById('session').hidden = false;
  if (!ids.length) {
    put(main, h('h1', {}, 'No tenants'),
      h('p', {}, 'This credential sees no tenant yet. Create one with POST /v1/tenants or herald tenants create.'));
    return '';
  }
  if (!routes.some(([re]) => re.test(location.hash))) location.hash = '#/subscriptions';
  else route();
  return '';
}

function route() {
  if (stopView) { stopView(); stopView = null; }
  if (!session.token) { signIn = signInView(); return; }
  if (!session.tenant) return;
  for (const [re, view, title] of routes) {
    const m = location.hash.match(re);
    if (!m) continue;
    for (const a of document.querySelectorAll('nav a')) {
      if (location.hash.startsWith(a.getAttribute('href'))) a.setAttribute('aria-current', 'page');
      else a.removeAttribute('aria-current');
    }
    document.title = `${title} · ${session.tenant} · Herald console`;
    put(main);
    stopView = view(main, m.slice(1).map(decodeURIComponent)) || null;
    main.focus();
    announce(`${title} for tenant ${session.tenant}`);
    return;
  }
  location.hash = '#/subscriptions';
}

window.addEventListener('hashchange', route);
document.getElementById('tenant').addEventListener('change', (ev) => {
  session.tenant = ev.target.value;
  if (location.hash.startsWith('#/subscriptions/')) location.hash = '#/subscriptions';
  else route();
});
function signOut(reason) {
  session.token = '';
  session.tenant = '';
  document.getElementById('nav').hidden = true;
  document.getElementById('session').hidden = true;
  if (stopView) { stopView(); stopView = null; }
  signIn = signInView();
  if (reason) {
    signIn.err.textContent = reason;
    signIn.err.hidden = false;
    signIn.control.setAttribute('aria-invalid', 'true');
  }
}
document.getElementById('signout').addEventListener('click', () => signOut());
// A token revoked or expired while the console is open: back to sign-in.
window.addEventListener('herald-unauthorized', () => {
  if (!document.getElementById('nav').hidden) signOut('Herald no longer accepts this token: sign in again.');
});

if (session.token) {
  start().then((refused) => { if (refused) signOut(refused); });
} else {
  signIn = signInView();
}

