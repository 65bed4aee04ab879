// Small DOM helpers. Everything dynamic is built with createElement + textContent:
// no innerHTML, no inline style, no inline event-handler attributes (strict CSP).

const FORBIDDEN = new Set(['style', 'innerHTML', 'outerHTML', 'srcdoc']);

/**
 * Create an element.
 *   h('button', {class: 'btn', type: 'button', onclick: fn, dataset: {testid: 'x'}}, 'text', child)
 * Props: `class`, `text` (textContent), `dataset`, `on<event>` functions, `hidden`,
 * booleans (true → empty attribute, false/null/undefined → omitted), everything else as attribute.
 */
export function h(tag, props, ...children) {
  const el = document.createElement(tag);
  if (props) {
    for (const [key, value] of Object.entries(props)) {
      if (FORBIDDEN.has(key) || key.toLowerCase().startsWith('on') && typeof value !== 'function') {
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

/** Remove every child of an element. */
export function clear(el) {
  while (el.firstChild) el.removeChild(el.firstChild);
  return el;
}

/** Replace every child of an element. */
export function replaceChildren(el, ...children) {
  clear(el);
  append(el, children);
  return el;
}

export function $(selector, root = document) {
  return root.querySelector(selector);
}

export function $$(selector, root = document) {
  return Array.from(root.querySelectorAll(selector));
}

export function byId(id) {
  return document.getElementById(id);
}

const SVG_NS = 'http://www.w3.org/2000/svg';

/** A decorative stroke icon (24×24 viewBox) from path data strings. */
export function icon(...paths) {
  const svg = document.createElementNS(SVG_NS, 'svg');
  svg.setAttribute('class', 'icon');
  svg.setAttribute('viewBox', '0 0 24 24');
  svg.setAttribute('aria-hidden', 'true');
  svg.setAttribute('focusable', 'false');
  for (const d of paths) {
    const path = document.createElementNS(SVG_NS, 'path');
    path.setAttribute('d', d);
    svg.appendChild(path);
  }
  return svg;
}

export const ICON_FLAG = ['M4 15s1-1 4-1 5 2 8 2 4-1 4-1V3s-1 1-4 1-5-2-8-2-4 1-4 1z', 'M4 22v-7'];
export const ICON_LOCK = ['M5 11h14v10H5z', 'M8 11V7a4 4 0 0 1 8 0v4'];

let fieldSeq = 0;

/** A unique id for a label/input pair. */
export function uid(prefix) {
  fieldSeq += 1;
  return `${prefix}-${fieldSeq}`;
}
