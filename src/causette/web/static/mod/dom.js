// Small DOM helpers for the console. Everything dynamic is built with createElement and
// textContent: no innerHTML, no inline style, no inline handler (the CSP forbids them anyway).

const FORBIDDEN = new Set(['style', 'innerHTML', 'outerHTML', 'srcdoc']);

/**
 * h('button', {class: 'btn', type: 'button', onclick: fn, dataset: {testid: 'x'}}, 'text', child)
 * Props: `class`, `text`, `dataset`, `on<event>` functions, booleans (true → empty attribute,
 * false/null/undefined → omitted), `value`, `checked`, `selected`; anything else an attribute.
 */
export function h(tag, props, ...children) {
  const el = document.createElement(tag);
  if (props) {
    for (const [key, value] of Object.entries(props)) {
      if (FORBIDDEN.has(key) || (key.startsWith('on') && typeof value !== 'function')) {
        throw new Error(`h(): forbidden property ${key}`);
      }
      if (value === undefined || value === null || value === false) continue;
      if (key === 'class') el.className = value;
      else if (key === 'text') el.textContent = String(value);
      else if (key === 'dataset') {
        for (const [k, v] of Object.entries(value)) if (v !== undefined && v !== null) el.dataset[k] = String(v);
      } else if (key.startsWith('on')) el.addEventListener(key.slice(2), value);
      else if (key === 'hidden') el.hidden = true;
      else if (key === 'value') el.value = String(value);
      else if (key === 'checked') { el.checked = true; el.defaultChecked = true; }
      else if (key === 'selected') { el.selected = true; el.defaultSelected = true; }
      else el.setAttribute(key, value === true ? '' : String(value));
    }
  }
  append(el, children);
  return el;
}

function append(el, children) {
  for (const child of children) {
    if (child === null || child === undefined || child === false) continue;
    if (Array.isArray(child)) append(el, child);
    else if (child instanceof Node) el.appendChild(child);
    else el.appendChild(document.createTextNode(String(child)));
  }
}

export function clear(el) {
  while (el.firstChild) el.removeChild(el.firstChild);
  return el;
}

export function replaceChildren(el, ...children) {
  clear(el);
  append(el, children);
  return el;
}

export function byId(id) {
  return document.getElementById(id);
}

let fieldSeq = 0;
/** A unique id for a label/input pair. */
export function uid(prefix) {
  fieldSeq += 1;
  return `${prefix}-${fieldSeq}`;
}
