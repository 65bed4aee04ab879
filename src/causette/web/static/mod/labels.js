// Names of what the console shows: categories (from the server), actions, severities.

import { h } from '../js/dom.js';
import { getLang, t, tn } from './i18n.js';

let categories = [];

export function setCategories(list) {
  categories = Array.isArray(list) ? list : [];
}

export function allCategories() {
  return categories;
}

export function categoryLabel(code, fallback) {
  const c = categories.find((x) => x.code === code);
  if (!c) return fallback || code;
  return getLang() === 'en' ? c.en : c.fr;
}

export function actionLabel(action) {
  return t(`action.${action}`);
}

export function targetLabel(kind) {
  return t(`target.${kind}`);
}

/** A severity badge: the number and a word, never colour alone. */
export function severityBadge(severity) {
  const level = Math.min(6, Math.max(1, Number(severity) || 6));
  return h('span', {
    class: `sev sev-${level}`,
    dataset: { testid: 'mod-severity', severity: level },
    text: t('severity.badge', { n: level, label: t(`severity.${level}`) }),
  });
}

export function genderLabel(g) {
  return t(`gender.${g}`);
}

/** "r:general" → "#general"; a private conversation → "conversation privée". */
export function streamLabel(stream) {
  if (!stream) return '';
  if (stream.startsWith('r:')) return `#${stream.slice(2)}`;
  if (stream.startsWith('d:')) return t('stream.private');
  return stream;
}

/** A keyed network hash, shortened for reading (the whole value in the title). */
export function keyBadge(key) {
  if (!key) return h('span', { class: 'muted', text: t('key.none') });
  return h('code', { class: 'key', title: key, text: key.slice(0, 12) });
}

export function durationLabel(minutes) {
  if (minutes === null || minutes === undefined) return t('duration.permanent');
  if (minutes % 1440 === 0 && minutes > 1440) return tn('duration.days', minutes / 1440);
  if (minutes % 60 === 0) return tn('duration.hours', minutes / 60);
  return tn('duration.minutes', minutes);
}
