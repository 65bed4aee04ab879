// Small shared formatting helpers.

import { h } from '../dom.js';
import { t } from '../i18n.js';

export const GENDER_SYMBOL = { f: '♀', m: '♂', x: '⚧' };

/** "♀ Femme" as an element: the symbol is decorative, the word is read. */
export function genderBadge(gender) {
  return h('span', { class: `gender gender-${gender || 'x'}` },
    h('span', { class: 'gender-symbol', 'aria-hidden': 'true', text: GENDER_SYMBOL[gender] || '' }),
    ' ',
    h('span', { class: 'gender-text', text: t(`gender.${gender || 'x'}`) }));
}

/** "34 ans · Femme · Lyon 1er Arrondissement (69)" */
export function profileSummary(p) {
  if (!p) return '';
  const parts = [];
  if (p.age) parts.push(t('people.age_years', { age: p.age }));
  if (p.gender) parts.push(t(`gender.${p.gender}`));
  if (p.commune) parts.push(p.dep ? `${p.commune} (${p.dep})` : p.commune);
  return parts.join(' · ');
}

/** A stable hue class for a person's name (colour is never the only cue). */
export function nameClass(personId) {
  let hash = 0;
  for (const ch of String(personId || '')) hash = (hash * 31 + ch.charCodeAt(0)) | 0;
  return `name-c${Math.abs(hash) % 8}`;
}
