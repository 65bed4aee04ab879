// Translations for the console: French first, English available. Static markup uses
// data-i18n="key" (textContent) and data-i18n-attr="attr:key;attr2:key2".

export const LANGS = ['fr', 'en'];
const STORAGE_KEY = 'causette_mod_lang';
const dicts = { fr: {}, en: {} };
let current = 'fr';
const listeners = new Set();

function stored() {
  try {
    const v = localStorage.getItem(STORAGE_KEY);
    if (LANGS.includes(v)) return v;
  } catch { /* storage may be disabled */ }
  return null;
}

export async function initI18n() {
  await Promise.all(LANGS.map(async (lang) => {
    try {
      const res = await fetch(`/static/mod/i18n/${lang}.json`, { credentials: 'same-origin' });
      if (res.ok) dicts[lang] = await res.json();
    } catch { /* keys are shown instead */ }
  }));
  const pageLang = (document.documentElement.lang || '').slice(0, 2).toLowerCase();
  current = stored() || (LANGS.includes(pageLang) ? pageLang : 'fr');
  document.documentElement.lang = current;
  applyStatic(document);
  return current;
}

export function getLang() {
  return current;
}

export function setLang(lang) {
  if (!LANGS.includes(lang) || lang === current) return;
  current = lang;
  try { localStorage.setItem(STORAGE_KEY, lang); } catch { /* ignore */ }
  document.documentElement.lang = lang;
  applyStatic(document);
  for (const fn of listeners) fn(lang);
}

export function onLangChange(fn) {
  listeners.add(fn);
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

export function applyStatic(root) {
  for (const el of root.querySelectorAll('[data-i18n]')) el.textContent = t(el.dataset.i18n);
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

/** A date and time, e.g. "23/11/2026 14:05". */
export function formatDateTime(ts) {
  return new Date(ts).toLocaleString(locale(), {
    day: '2-digit', month: '2-digit', year: 'numeric', hour: '2-digit', minute: '2-digit',
  });
}

export function formatTime(ts) {
  return new Date(ts).toLocaleTimeString(locale(), { hour: '2-digit', minute: '2-digit' });
}

/** How long ago, e.g. "il y a 5 min" / "5 min ago". */
export function formatAge(ts, now = Date.now()) {
  const s = Math.max(0, Math.round((now - ts) / 1000));
  const rtf = new Intl.RelativeTimeFormat(locale(), { numeric: 'auto', style: 'short' });
  if (s < 45) return t('age.now');
  if (s < 3600) return rtf.format(-Math.round(s / 60), 'minute');
  if (s < 86400) return rtf.format(-Math.round(s / 3600), 'hour');
  return rtf.format(-Math.round(s / 86400), 'day');
}
