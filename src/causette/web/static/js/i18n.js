// Translations: French first, English available. Every visible string goes through t().
// Static markup uses data-i18n="key" (textContent) and data-i18n-attr="attr:key;attr2:key2".

export const LANGS = ['fr', 'en'];
const STORAGE_KEY = 'causette_lang';
const dicts = { fr: {}, en: {} };
let current = 'fr';
const listeners = new Set();

function readCookie(name) {
  for (const part of document.cookie.split(';')) {
    const [k, ...rest] = part.trim().split('=');
    if (k === name) return decodeURIComponent(rest.join('='));
  }
  return null;
}

function storedLang() {
  try {
    const v = localStorage.getItem(STORAGE_KEY);
    if (LANGS.includes(v)) return v;
  } catch { /* storage may be disabled */ }
  const c = readCookie(STORAGE_KEY);
  if (LANGS.includes(c)) return c;
  return null;
}

/** Load both dictionaries and pick the language: saved choice, else the page's, else French. */
export async function initI18n() {
  await Promise.all(LANGS.map(async (lang) => {
    try {
      const res = await fetch(`/static/i18n/${lang}.json`, { credentials: 'same-origin' });
      if (res.ok) dicts[lang] = await res.json();
    } catch { /* fall back to keys */ }
  }));
  const pageLang = (document.documentElement.lang || '').slice(0, 2).toLowerCase();
  current = storedLang() || (LANGS.includes(pageLang) ? pageLang : 'fr');
  document.documentElement.lang = current;
  applyStatic(document);
  return current;
}

export function getLang() {
  return current;
}

/** Whether the person chose a language explicitly (saved in this browser). */
export function hasStoredLang() {
  return storedLang() !== null;
}

/** Switch language: remember it (localStorage + cookie for the server), update the page. */
export function setLang(lang, { remember = true } = {}) {
  if (!LANGS.includes(lang)) return;
  const changed = lang !== current;
  current = lang;
  if (remember) {
    try { localStorage.setItem(STORAGE_KEY, lang); } catch { /* ignore */ }
    const secure = location.protocol === 'https:' ? '; Secure' : '';
    document.cookie = `${STORAGE_KEY}=${lang}; Path=/; SameSite=Strict; Max-Age=31536000${secure}`;
  }
  document.documentElement.lang = lang;
  applyStatic(document);
  if (changed) for (const fn of listeners) fn(lang);
}

export function onLangChange(fn) {
  listeners.add(fn);
  return () => listeners.delete(fn);
}

/** Translate a key, replacing {name} placeholders with vars.name. */
export function t(key, vars) {
  let s = dicts[current][key];
  if (s === undefined) s = dicts.fr[key];
  if (s === undefined) s = key;
  if (vars) s = s.replace(/\{(\w+)\}/g, (m, k) => (k in vars ? String(vars[k]) : m));
  return s;
}

/** Plural: key_one / key_other; French treats 0 and 1 as singular. */
export function tn(key, n, vars) {
  const one = current === 'fr' ? n < 2 : n === 1;
  return t(`${key}_${one ? 'one' : 'other'}`, { n, ...vars });
}

/** Translate the static markup under root. */
export function applyStatic(root) {
  for (const el of root.querySelectorAll('[data-i18n]')) {
    el.textContent = t(el.dataset.i18n);
  }
  for (const el of root.querySelectorAll('[data-i18n-attr]')) {
    for (const pair of el.dataset.i18nAttr.split(';')) {
      const [attr, key] = pair.split(':').map((s) => s.trim());
      if (attr && key) el.setAttribute(attr, t(key));
    }
  }
}

function locale() {
  return current === 'fr' ? 'fr-FR' : 'en-GB';
}

/** Format a time as HH:MM in the person's language. */
export function formatTime(ts) {
  const d = new Date(ts);
  return d.toLocaleTimeString(locale(), { hour: '2-digit', minute: '2-digit' });
}

/** "12 mai 2026 à 14:30" / "12 May 2026 at 14:30" (local time). */
export function formatDateTime(ts) {
  const d = new Date(ts);
  return d.toLocaleString(locale(), {
    day: 'numeric', month: 'long', year: 'numeric', hour: '2-digit', minute: '2-digit',
  });
}

/** "12 mai 2026" (local date). */
export function formatDate(ts) {
  return new Date(ts).toLocaleDateString(locale(), { day: 'numeric', month: 'long', year: 'numeric' });
}

/** A moment soon: "14:30" today, else "12 mai à 14:30". */
export function formatSoon(ts) {
  const d = new Date(ts);
  const now = new Date();
  if (d.toDateString() === now.toDateString()) return formatTime(ts);
  return d.toLocaleString(locale(), { day: 'numeric', month: 'long', hour: '2-digit', minute: '2-digit' });
}

/** Wire the FR/EN buttons of a page (class .lang-btn, data-lang) to setLang. */
export function wireLangButtons() {
  const sync = () => {
    for (const button of document.querySelectorAll('.lang-btn')) {
      button.setAttribute('aria-pressed', button.dataset.lang === current ? 'true' : 'false');
    }
  };
  for (const button of document.querySelectorAll('.lang-btn')) {
    button.addEventListener('click', () => setLang(button.dataset.lang));
  }
  onLangChange(sync);
  sync();
}
