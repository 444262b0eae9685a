// Audit: run the hash-chain verification of the tenant's trail.
import { api, tenantPath } from './api.js';
import { h, put, announce, problemText } from './dom.js';

export function auditView(main) {
  const ctl = new AbortController();
  const out = h('div', { id: 'verify-result', 'aria-live': 'polite' });
  const run = h('button', { type: 'button', class: 'primary', id: 'verify' }, 'Verify the audit trail');
  main.append(h('h1', {}, 'Audit'),
    h('p', {}, 'Every accepted event, notification, delivery attempt and subscription change is a record in a hash chain. ',
      'Verification walks the chain and reports the first broken link.'),
    run, out);
  run.addEventListener('click', async () => {
    run.disabled = true;
    put(out, h('p', {}, h('progress', { 'aria-label': 'Verifying' }), ' Walking the chain…'));
    const res = await api('GET', tenantPath('/audit/verify'), undefined, { signal: ctl.signal });
    run.disabled = false;
    if (res.aborted) return;
    if (!res.ok) {
      put(out, h('p', { class: 'error', role: 'alert' }, problemText(res)));
      return;
    }
    const r = res.data;
    const rows = [['Records', r.records], ['First sequence', r.firstSeq], ['Last sequence', r.lastSeq], ['Last hash', r.lastHash],
      ['Anchor', r.anchor ? `${r.anchor}${r.anchorCheckpoint ? ' (matches the retention checkpoint)' : ''}` : 'genesis']];
    put(out,
      r.ok
        ? h('p', { class: 'ok', 'data-ok': 'true' }, h('strong', {}, 'Intact.'), ` ${r.records} records verified.`)
        : h('p', { class: 'bad', 'data-ok': 'false', role: 'alert' }, h('strong', {}, 'Broken'),
          r.broken ? ` at sequence ${r.broken.seq}: ${r.broken.reason}` : ''),
      h('table', {}, h('tbody', {}, rows.filter(([, v]) => v !== undefined && v !== '').map(([k, v]) =>
        h('tr', {}, h('th', { scope: 'row' }, k), h('td', { class: 'mono' }, String(v)))))));
    announce(r.ok ? 'Audit trail intact' : 'Audit trail broken');
  });
  return () => ctl.abort();
}
