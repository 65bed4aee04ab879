// "Signaler": the report dialog (DSA art. 16) for a message, a person or a room.
// Category, optional explanation, good-faith statement → `report` command → case code.

import { byId, clear, h } from '../dom.js';
import { onLangChange, t } from '../i18n.js';
import { toast } from './dialogs.js';

/** The categories, most urgent first (docs/moderation.md). */
export const CATEGORIES = [
  'child_safety', 'threat', 'ambush', 'trafficking', 'harassment', 'hate', 'sexual_nonconsent',
  'drugs', 'spam_scam', 'other',
];
const URGENT = new Set(['child_safety', 'threat', 'ambush']);
export const EXPLANATION_MAX = 2000;

const FIELDS = {
  category: { error: 'report-category-error', input: () => document.querySelector('#report-categories input:checked') || document.querySelector('#report-categories input') },
  explanation: { error: 'report-explanation-error', input: () => byId('report-explanation') },
  good_faith: { error: 'report-good-faith-error', input: () => byId('report-good-faith') },
};

let actions = null;
let wired = false;
let target = null; // {target, id, about}
let pending = null; // {ref, target, id}
let counter = 0;
let opener = null;

export function initReport(a) {
  actions = a;
  if (wired) return;
  wired = true;
  const dialog = byId('report-dialog');
  renderCategories();
  byId('report-form').addEventListener('submit', (e) => {
    e.preventDefault();
    submit();
  });
  byId('report-categories').addEventListener('change', () => {
    setFieldError('category', null);
    updateUrgent();
  });
  byId('report-explanation').addEventListener('input', () => {
    setFieldError('explanation', null);
    updateCounter();
  });
  byId('report-good-faith').addEventListener('change', () => setFieldError('good_faith', null));
  byId('report-cancel').addEventListener('click', () => dialog.close('cancel'));
  byId('report-close').addEventListener('click', () => dialog.close('cancel'));
  byId('report-done-close').addEventListener('click', () => dialog.close('done'));
  dialog.addEventListener('close', () => {
    if (opener && document.contains(opener)) opener.focus();
    opener = null;
  });
  onLangChange(() => {
    renderCategories();
    renderAbout();
    updateCounter();
  });
}

function renderCategories() {
  const box = byId('report-categories');
  const checked = box.querySelector('input:checked');
  const value = checked ? checked.value : null;
  clear(box);
  for (const code of CATEGORIES) {
    const id = `report-cat-${code}`;
    box.appendChild(h('div', { class: `report-category${URGENT.has(code) ? ' is-urgent' : ''}` },
      h('input', {
        type: 'radio', name: 'category', value: code, id,
        checked: code === value, dataset: { testid: `report-category-${code}` },
      }),
      h('label', { for: id, text: t(`category.${code}`) })));
  }
}

function updateUrgent() {
  const checked = byId('report-categories').querySelector('input:checked');
  byId('report-urgent').hidden = !(checked && URGENT.has(checked.value));
}

function updateCounter() {
  const n = [...byId('report-explanation').value].length;
  byId('report-explanation-counter').textContent = t('common.counter', { n, max: EXPLANATION_MAX });
}

function renderAbout() {
  if (!target) return;
  const a = target.about;
  let text = '';
  if (target.target === 'message') {
    const excerpt = a.text.length > 140 ? `${a.text.slice(0, 140)}…` : a.text;
    text = t('report.about_message', { name: a.name, text: excerpt });
  } else if (target.target === 'person') {
    text = t('report.about_person', { name: a.name });
  } else {
    text = t('report.about_room', { room: a.name });
  }
  byId('report-about').textContent = text;
}

/**
 * Open the dialog. spec: {target: 'message'|'person'|'room', id, name, text?}
 */
export function openReport(spec) {
  const dialog = byId('report-dialog');
  target = { target: spec.target, id: spec.id, about: { name: spec.name || '', text: spec.text || '' } };
  pending = null;
  opener = document.activeElement;
  byId('report-form').reset();
  byId('report-form').hidden = false;
  byId('report-done').hidden = true;
  byId('report-case-code').textContent = '';
  renderCategories();
  clearErrors();
  updateUrgent();
  updateCounter();
  renderAbout();
  setBusy(false);
  if (!dialog.open) dialog.showModal();
  const first = byId('report-categories').querySelector('input');
  if (first) first.focus();
}

function clearErrors() {
  const top = byId('report-error');
  top.hidden = true;
  top.textContent = '';
  for (const field of Object.keys(FIELDS)) setFieldError(field, null);
}

function setFieldError(field, message) {
  const spec = FIELDS[field];
  const errEl = byId(spec.error);
  errEl.textContent = message || '';
  errEl.hidden = !message;
  const wrap = errEl.closest('.field');
  if (wrap) wrap.classList.toggle('has-error', Boolean(message));
  if (field === 'category') {
    for (const input of byId('report-categories').querySelectorAll('input')) {
      if (message) input.setAttribute('aria-invalid', 'true');
      else input.removeAttribute('aria-invalid');
    }
    const fieldset = byId('report-field-category');
    if (message) fieldset.setAttribute('aria-describedby', spec.error);
    else fieldset.removeAttribute('aria-describedby');
    return;
  }
  const input = spec.input();
  const base = field === 'explanation' ? 'report-explanation-hint report-explanation-counter' : '';
  if (message) {
    input.setAttribute('aria-invalid', 'true');
    input.setAttribute('aria-describedby', `${base} ${spec.error}`.trim());
  } else {
    input.removeAttribute('aria-invalid');
    if (base) input.setAttribute('aria-describedby', base);
    else input.removeAttribute('aria-describedby');
  }
}

function showTopError(message) {
  const top = byId('report-error');
  top.textContent = message;
  top.hidden = false;
  top.focus();
}

function setBusy(on) {
  const button = byId('report-submit');
  button.disabled = on;
  if (on) button.setAttribute('aria-busy', 'true');
  else button.removeAttribute('aria-busy');
  button.textContent = on ? t('report.sending') : t('report.submit');
}

function submit() {
  if (!target || pending) return;
  clearErrors();
  const checked = byId('report-categories').querySelector('input:checked');
  const goodFaith = byId('report-good-faith').checked;
  const explanation = byId('report-explanation').value.trim();
  let first = null;
  if (!checked) {
    setFieldError('category', t('report.need_category'));
    first = first || 'category';
  }
  if ([...explanation].length > EXPLANATION_MAX) {
    setFieldError('explanation', t('report.too_long', { max: EXPLANATION_MAX }));
    first = first || 'explanation';
  }
  if (!goodFaith) {
    setFieldError('good_faith', t('report.need_good_faith'));
    first = first || 'good_faith';
  }
  if (first) {
    FIELDS[first].input().focus();
    return;
  }
  counter += 1;
  const ref = `report:${counter}`;
  const cmd = {
    type: 'report', target: target.target, id: target.id, category: checked.value,
    explanation, good_faith: true, ref,
  };
  if (!actions.command(cmd)) {
    showTopError(t('error.offline'));
    return;
  }
  pending = { ref, target: target.target, id: target.id };
  setBusy(true);
}

/** `reported`: the report was recorded. */
export function onReported(ev) {
  const dialog = byId('report-dialog');
  const ours = pending && pending.target === ev.target && pending.id === ev.id;
  if (ours) pending = null;
  if (!ours || !dialog.open) {
    toast(t('report.toast', { case: ev.case }), 'info', { timeout: 15000, link: { href: caseHref(ev.case), text: t('report.follow') } });
    return;
  }
  setBusy(false);
  byId('report-form').hidden = true;
  byId('report-done').hidden = false;
  byId('report-done-text').textContent = ev.joined ? t('report.done_joined') : t('report.done');
  byId('report-case-code').textContent = ev.case;
  const link = byId('report-case-link');
  link.href = caseHref(ev.case);
  link.textContent = t('report.follow');
  link.appendChild(h('span', { class: 'sr-only', text: ` ${t('common.new_tab')}` }));
  byId('report-done-next').textContent = t('report.done_next');
  byId('report-done-close').focus();
}

/** An `error` answering a report (ref "report:…"): show it next to the field at fault. */
export function onReportError(ev) {
  if (!pending || ev.ref !== pending.ref) {
    toast(ev.message || t('error.generic'), 'error');
    return;
  }
  pending = null;
  setBusy(false);
  const dialog = byId('report-dialog');
  const message = ev.message || t('error.generic');
  if (!dialog.open) {
    toast(message, 'error');
    return;
  }
  const field = ev.field && FIELDS[ev.field] ? ev.field : null;
  if (field) {
    setFieldError(field, message);
    FIELDS[field].input().focus();
  } else {
    showTopError(message);
  }
}

/** The connection dropped while a report was on its way: let the person send it again. */
export function reportInterrupted() {
  if (!pending) return;
  pending = null;
  setBusy(false);
  if (byId('report-dialog').open) showTopError(t('report.interrupted'));
}

export function caseHref(code) {
  return `/case/${encodeURIComponent(code)}`;
}
