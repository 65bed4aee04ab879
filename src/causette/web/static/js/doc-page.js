// Shared by the pages /decision/<code> and /case/<code>: the code from the address, the
// language switch, loading / not found / rate-limited states. Everything rendered as text.

import { clear, h } from './dom.js';
import { initI18n, onLangChange, t, wireLangButtons } from './i18n.js';

const CODE_RE = /^[A-Z]-[0-9A-Z]{1,40}$/;

/** The code in the address (/decision/D-4MX9QK2T → "D-4MX9QK2T"), or null. */
export function codeFromPath(prefix) {
  const parts = location.pathname.split('/').filter(Boolean);
  if (parts.length < 2) return null;
  let code;
  try { code = decodeURIComponent(parts[parts.length - 1]).trim().toUpperCase(); } catch { return null; }
  return CODE_RE.test(code) && code.startsWith(`${prefix}-`) ? code : null;
}

/**
 * Start a page: translations, language switch, then `load()` (and again after each language
 * change). `load` returns the result of an api call; `render(root, data)` shows it.
 */
export async function startDocPage({ prefix, load, render, notFoundKey, titleKey }) {
  await initI18n();
  wireLangButtons();
  const root = document.getElementById('doc');
  const code = codeFromPath(prefix);
  const setTitle = () => {
    const site = document.querySelector('.site-name');
    const name = site ? site.textContent : '';
    document.title = code ? `${t(titleKey)} ${code} — ${name}` : `${t(titleKey)} — ${name}`;
  };
  setTitle();
  if (!code) {
    showState(root, t('page.bad_code'), { error: true });
    return;
  }
  let seq = 0;
  const run = async () => {
    const mine = ++seq;
    root.setAttribute('aria-busy', 'true');
    const res = await load(code);
    if (mine !== seq) return;
    root.removeAttribute('aria-busy');
    if (res.ok && res.data) {
      render(root, res.data);
      return;
    }
    if (res.status === 404) showState(root, t(notFoundKey), { error: true });
    else if (res.status === 429) showState(root, t('page.rate_limited'), { error: true, retry: run });
    else if (res.status === 0) showState(root, t('error.network'), { error: true, retry: run });
    else showState(root, t('error.generic'), { error: true, retry: run });
  };
  onLangChange(() => {
    setTitle();
    run();
  });
  await run();
}

export function showState(root, message, { error = false, retry = null } = {}) {
  clear(root);
  root.appendChild(h('p', {
    class: `doc-state${error ? ' is-error' : ''}`, role: error ? 'alert' : 'status',
    dataset: { testid: error ? 'doc-error' : 'doc-state' }, text: message,
  }));
  if (retry) {
    root.appendChild(h('p', { class: 'doc-actions' },
      h('button', { type: 'button', class: 'btn btn-ghost', dataset: { testid: 'doc-retry' }, onclick: () => retry() }, t('page.retry'))));
  }
}
