// DOM building from nodes, never from HTML strings: every value from the API (and every
// receiver's answer) is set as text, never parsed as markup.

export function h(tag, attrs, ...children) {
  const el = document.createElement(tag);
  setAttrs(el, attrs);
  append(el, children);
  return el;
}

const SVG = 'http://www.w3.org/2000/svg';

export function s(tag, attrs, ...children) {
  const el = document.createElementNS(SVG, tag);
  setAttrs(el, attrs);
  append(el, children);
  return el;
}

function setAttrs(el, attrs) {
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k.startsWith('on') && typeof v === 'function') {
      el.addEventListener(k.slice(2), v);
    } else if (k === 'class') {
      el.setAttribute('class', v);
    } else if (v === true) {
      el.setAttribute(k, '');
    } else {
      el.setAttribute(k, String(v));
    }
  }
}

function append(el, children) {
  for (const c of children.flat(Infinity)) {
    if (c === undefined || c === null || c === false) continue;
    el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
}

// announce tells screen-reader users what just happened.
export function announce(msg) {
  const st = document.getElementById('status');
  st.textContent = '';
  st.textContent = msg;
}

let ids = 0;
export function uid(prefix) {
  ids += 1;
  return `${prefix}-${ids}`;
}

export function fmtTime(iso) {
  if (!iso) return '';
  const d = new Date(iso);
  return Number.isNaN(d.getTime()) ? String(iso) : d.toLocaleString();
}

export function fmtMs(ms) {
  if (ms === undefined || ms === null) return '';
  return ms < 10 ? `${ms.toFixed(1)} ms` : `${Math.round(ms)} ms`;
}

// problemText is one line for a problem document or a failed call.
export function problemText(res) {
  const p = res.problem;
  if (!p) return res.error || `HTTP ${res.status}`;
  let t = p.detail || p.title || `HTTP ${res.status}`;
  if (Array.isArray(p.errors) && p.errors.length) {
    t += ': ' + p.errors.map((e) => `${e.pointer} ${e.detail}`).join('; ');
  }
  return t;
}

// field is a labelled form control with a hint and an inline error
// message wired through aria-describedby.
export function field(label, control, hint) {
  const id = control.id || uid('f');
  control.id = id;
  const err = h('p', { class: 'error', id: `${id}-err`, hidden: true });
  const describedBy = [];
  let hintEl = null;
  if (hint) {
    hintEl = h('p', { class: 'hint', id: `${id}-hint` }, hint);
    describedBy.push(hintEl.id);
  }
  describedBy.push(err.id);
  control.setAttribute('aria-describedby', describedBy.join(' '));
  const wrap = h('div', { class: 'field' }, h('label', { for: id }, label), hintEl, control, err);
  return { wrap, control, err };
}

export function setFieldError(f, msg) {
  if (msg) {
    f.err.textContent = msg;
    f.err.hidden = false;
    f.control.setAttribute('aria-invalid', 'true');
  } else {
    f.err.textContent = '';
    f.err.hidden = true;
    f.control.removeAttribute('aria-invalid');
  }
}

// put replaces el's children, skipping the absent ones (replaceChildren
// itself would render null as the text "null").
export function put(el, ...children) {
  el.replaceChildren();
  append(el, children);
}
