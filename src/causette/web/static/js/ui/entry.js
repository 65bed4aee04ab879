// Entry screen: pseudonym, gender, age, postal code → commune, rules, "Entrer".

import { api, errorsOf } from '../api.js';
import { byId, h, replaceChildren } from '../dom.js';
import { getLang, onLangChange, t } from '../i18n.js';

const FIELDS = {
  pseudonym: { input: 'f-pseudonym', error: 'f-pseudonym-error', hint: 'f-pseudonym-hint' },
  gender: { input: null, error: 'f-gender-error' },
  age: { input: 'f-age', error: 'f-age-error', hint: 'f-age-hint' },
  postal_code: { input: 'f-postal', error: 'f-postal-error', hint: 'f-postal-status' },
  commune: { input: 'f-commune', error: 'f-commune-error' },
  accept_rules: { input: 'f-accept', error: 'f-accept-error' },
};

// When an error comes without `field`, its code still says which field it is about.
const CODE_FIELDS = {
  pseudonym_length: 'pseudonym', pseudonym_chars: 'pseudonym', pseudonym_taken: 'pseudonym',
  pseudonym_reserved: 'pseudonym', gender_invalid: 'gender', age_invalid: 'age', age_too_young: 'age',
  postal_code_invalid: 'postal_code', commune_invalid: 'commune', rules_not_accepted: 'accept_rules',
};

let site = null;
let communes = []; // communes of the typed postal code
let lookupSeq = 0;
let onEntered = null;
let submitting = false;
let wired = false;

/** Show the entry screen. `notice`: a message to show at the top (e.g. why the session ended). */
export function showEntry({ entered, notice } = {}) {
  onEntered = entered;
  wire();
  byId('entry-screen').hidden = false;
  byId('skip-link').setAttribute('href', '#entry-main');
  clearErrors();
  if (notice) showTopError(notice, false);
  loadSite();
  // Focus the first field on a computer; on a phone the keyboard would hide the page.
  if (!notice && window.matchMedia('(min-width: 760px)').matches) byId('f-pseudonym').focus({ preventScroll: true });
}

export function hideEntry() {
  byId('entry-screen').hidden = true;
}

function wire() {
  if (wired) return;
  wired = true;
  byId('entry-form').addEventListener('submit', (e) => {
    e.preventDefault();
    submit();
  });
  const postal = byId('f-postal');
  postal.addEventListener('input', () => {
    const cleaned = postal.value.replace(/\D/g, '').slice(0, 5);
    if (cleaned !== postal.value) postal.value = cleaned;
    lookupPostal(cleaned);
  });
  byId('f-commune').addEventListener('change', () => setFieldError('commune', null));
  for (const [field, spec] of Object.entries(FIELDS)) {
    if (!spec.input) continue;
    byId(spec.input).addEventListener('input', () => {
      if (field !== 'postal_code') setFieldError(field, null);
    });
  }
  for (const radio of document.querySelectorAll('#field-gender input[type=radio]')) {
    radio.addEventListener('change', () => setFieldError('gender', null));
  }
  onLangChange(() => {
    renderRules();
    renderCommunes();
  });
}

async function loadSite() {
  if (site) return;
  const res = await api.site();
  if (res.ok && res.data) {
    site = res.data;
    const age = byId('f-age');
    if (Number.isInteger(site.min_age)) age.min = String(site.min_age);
    if (Number.isInteger(site.max_age)) age.max = String(site.max_age);
    renderRules();
  }
}

function renderRules() {
  const box = byId('rules-text');
  const hint = byId('f-age-hint');
  if (site && Number.isInteger(site.min_age)) hint.textContent = t('entry.age_hint_min', { min: site.min_age });
  if (!site || !site.rules) return;
  const text = site.rules[getLang()] || site.rules.fr || '';
  // Rules are plain text: paragraphs separated by blank lines, rendered as text.
  const paras = text.split(/\n\s*\n/).map((p) => p.trim()).filter(Boolean);
  replaceChildren(box, paras.map((p) => h('p', { text: p })));
}

async function lookupPostal(code) {
  const seq = ++lookupSeq;
  communes = [];
  setFieldError('postal_code', null);
  setFieldError('commune', null);
  renderCommunes();
  if (code.length !== 5) return;
  byId('f-postal-status').textContent = t('entry.postal_searching');
  const res = await api.postal(code);
  if (seq !== lookupSeq) return; // a newer code was typed
  byId('f-postal-status').textContent = '';
  if (res.ok && res.data && Array.isArray(res.data.communes)) {
    communes = res.data.communes;
    if (!communes.length) setFieldError('postal_code', t('entry.postal_unknown'));
    renderCommunes();
  } else if (res.status === 404 || res.status === 422 || res.status === 400) {
    const err = errorsOf(res, t('entry.postal_unknown'))[0];
    setFieldError('postal_code', err.message || t('entry.postal_unknown'));
  } else {
    setFieldError('postal_code', t('error.network'));
  }
}

function renderCommunes() {
  const field = byId('field-commune');
  const select = byId('f-commune');
  const status = byId('f-postal-status');
  if (communes.length > 1) {
    const previous = select.value;
    replaceChildren(select,
      h('option', { value: '', text: t('entry.commune_choose') }),
      communes.map((c) => h('option', { value: c.code, text: communeLabel(c) })));
    if (communes.some((c) => c.code === previous)) select.value = previous;
    field.hidden = false;
    status.textContent = t('entry.commune_several', { n: communes.length });
  } else {
    field.hidden = true;
    replaceChildren(select);
    status.textContent = communes.length === 1
      ? t('entry.commune_single', { name: communes[0].name, dep: communes[0].dep })
      : '';
  }
}

function communeLabel(c) {
  const former = Array.isArray(c.former) && c.former.length ? ` — ${c.former.join(', ')}` : '';
  return `${c.name} (${c.dep})${former}`;
}

function values() {
  const gender = document.querySelector('#field-gender input[name=gender]:checked');
  const ageRaw = byId('f-age').value.trim();
  const age = /^\d{1,3}$/.test(ageRaw) ? Number(ageRaw) : null;
  let commune = null;
  if (communes.length > 1) commune = byId('f-commune').value || null;
  else if (communes.length === 1) commune = communes[0].code;
  const body = {
    pseudonym: byId('f-pseudonym').value.trim(),
    gender: gender ? gender.value : '',
    age,
    postal_code: byId('f-postal').value.trim(),
    accept_rules: byId('f-accept').checked,
    lang: getLang(),
  };
  // `commune` may be omitted when the postal code covers one commune (or is not known yet).
  if (commune) body.commune = commune;
  return body;
}

async function submit() {
  if (submitting) return;
  clearErrors();
  const body = values();
  submitting = true;
  const button = byId('entry-submit');
  button.disabled = true;
  button.setAttribute('aria-busy', 'true');
  const res = await api.enter(body);
  submitting = false;
  button.disabled = false;
  button.removeAttribute('aria-busy');
  if (res.ok && res.data && res.data.me) {
    clearErrors();
    if (onEntered) onEntered(res.data);
    return;
  }
  const errors = errorsOf(res, res.status === 0 ? t('error.network') : t('error.generic'));
  let firstField = null;
  const top = [];
  let decision = null; // entry refused by a ban: the statement can be read (and appealed)
  for (const err of errors) {
    if (err.code === 'banned' && err.details && typeof err.details.decision === 'string') decision = err.details.decision;
    let field = err.field || CODE_FIELDS[err.code] || null;
    if (field === 'commune' && byId('field-commune').hidden) field = 'postal_code';
    if (field && FIELDS[field]) {
      setFieldError(field, err.message || t('error.generic'));
      if (!firstField) firstField = field;
    } else {
      top.push(err.message || t('error.generic'));
    }
  }
  if (top.length) showTopError(top.join(' '), !firstField, decision);
  if (firstField) focusField(firstField);
}

function showTopError(message, focus, decision = null) {
  const box = byId('entry-error');
  box.textContent = message;
  if (decision) {
    box.appendChild(document.createTextNode(' '));
    box.appendChild(h('a', {
      href: `/decision/${encodeURIComponent(decision)}`, class: 'form-error-link',
      dataset: { testid: 'entry-read-decision' },
    }, t('entry.read_decision')));
  }
  box.hidden = false;
  if (focus) box.focus();
}

function clearErrors() {
  const box = byId('entry-error');
  box.hidden = true;
  box.textContent = '';
  for (const field of Object.keys(FIELDS)) setFieldError(field, null);
}

function fieldInputs(field) {
  if (field === 'gender') return Array.from(document.querySelectorAll('#field-gender input[type=radio]'));
  const spec = FIELDS[field];
  return spec && spec.input ? [byId(spec.input)] : [];
}

function setFieldError(field, message) {
  const spec = FIELDS[field];
  if (!spec) return;
  const errEl = byId(spec.error);
  errEl.textContent = message || '';
  errEl.hidden = !message;
  for (const input of fieldInputs(field)) {
    const ids = [spec.hint, message ? spec.error : null].filter(Boolean);
    if (field === 'gender') {
      // The fieldset carries the description; each radio says it is invalid.
      if (message) input.setAttribute('aria-invalid', 'true');
      else input.removeAttribute('aria-invalid');
      if (message) input.setAttribute('aria-describedby', spec.error);
      else input.removeAttribute('aria-describedby');
      continue;
    }
    if (message) input.setAttribute('aria-invalid', 'true');
    else input.removeAttribute('aria-invalid');
    if (ids.length) input.setAttribute('aria-describedby', ids.join(' '));
    else input.removeAttribute('aria-describedby');
  }
  const wrap = errEl.closest('.field');
  if (wrap) wrap.classList.toggle('has-error', Boolean(message));
}

function focusField(field) {
  const inputs = fieldInputs(field);
  if (!inputs.length) return;
  const target = field === 'gender' ? (inputs.find((i) => i.checked) || inputs[0]) : inputs[0];
  target.focus();
}

/** Reset the form (after "Quitter"). */
export function resetEntryForm() {
  byId('entry-form').reset();
  communes = [];
  renderCommunes();
  clearErrors();
}
