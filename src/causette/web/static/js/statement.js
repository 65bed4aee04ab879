// A statement of reasons (DSA art. 17) and its appeal form (art. 20): shown in the chat's
// decision dialog and on the page /decision/<code>. Everything is rendered as text.

import { api, errorsOf } from './api.js';
import { clear, h } from './dom.js';
import { formatDateTime, getLang, t } from './i18n.js';

export const APPEAL_MAX = 2000;
const TIMED = new Set(['mute', 'ban']);
let formCounter = 0;

/** What was decided, in plain words. */
export function actionText(view) {
  const until = view.expires_at ? formatDateTime(view.expires_at) : null;
  switch (view.action) {
    case 'warn': return t('decision.action.warn');
    case 'delete_message': return t('decision.action.delete_message');
    case 'mute': return until ? t('decision.action.mute', { until }) : t('decision.action.mute_short');
    case 'kick': return t('decision.action.kick');
    case 'ban': return until ? t('decision.action.ban_until', { until }) : t('decision.action.ban_permanent');
    case 'refuse': return t('decision.action.refuse');
    case 'block_message': return t('decision.action.block_message');
    default: return t('decision.action.other', { action: String(view.action || '') });
  }
}

/** Is the decision still in force (not lifted, not expired)? */
export function inForce(view, now = Date.now()) {
  if (!view || view.lifted) return false;
  if (TIMED.has(view.action)) return view.expires_at === null || view.expires_at === undefined || view.expires_at > now;
  return false;
}

function row(label, value, testid) {
  return [
    h('dt', { text: label }),
    h('dd', { dataset: { testid } }, value),
  ];
}

/**
 * Render `view` into `root`.
 * opts.heading: tag of the section headings ('h3' in a dialog, 'h2' on a page);
 * opts.onChange(view): the view changed (an appeal was recorded).
 */
export function renderStatement(root, view, opts = {}) {
  const heading = opts.heading || 'h3';
  // Re-rendered (a language change): keep an appeal being written.
  const old = root.querySelector('.appeal-form:not([hidden]) textarea');
  const draft = old && root.dataset.decision === view.id ? old.value : null;
  clear(root);
  root.classList.add('statement');
  root.dataset.decision = view.id;

  root.appendChild(h('p', { class: 'statement-action', dataset: { testid: 'decision-action', action: view.action } },
    actionText(view)));
  if (view.lifted) {
    root.appendChild(h('p', { class: 'statement-lifted', dataset: { testid: 'decision-lifted' }, text: t('decision.lifted') }));
  }

  const facts = h('span', { class: 'statement-text', text: view.facts || '' });
  let until = null;
  if (TIMED.has(view.action)) until = view.expires_at ? formatDateTime(view.expires_at) : t('decision.no_end');
  const automated = view.automated ? t('decision.automated_yes') : t('decision.automated_no');
  root.appendChild(h('dl', { class: 'statement-list' },
    row(t('decision.facts'), facts, 'decision-facts'),
    row(t('decision.category'), view.category_label || view.category || '', 'decision-category'),
    row(t('decision.ground'), view.ground || '', 'decision-ground'),
    row(t('decision.how'), automated, 'decision-automated'),
    row(t('decision.date'), view.created_at ? formatDateTime(view.created_at) : '', 'decision-date'),
    until ? row(t('decision.until'), until, 'decision-until') : null,
    row(t('decision.code'), h('span', { class: 'code', text: view.id }), 'decision-code'),
    view.case ? row(t('decision.case'), h('span', { class: 'code', text: view.case }), 'decision-case') : null));

  const section = h('section', { class: 'appeal', 'aria-label': t('appeal.title') });
  root.appendChild(section);
  section.appendChild(h(heading, { class: 'appeal-title', text: t('appeal.title') }));
  renderAppeal(section, view, opts, heading);
  if (draft !== null) {
    const open = section.querySelector('[data-testid=appeal-open]');
    const textarea = section.querySelector('textarea');
    if (open && textarea) {
      open.click();
      textarea.value = draft;
      textarea.dispatchEvent(new Event('input'));
    }
  }
}

function renderAppeal(section, view, opts, heading, justRecorded = false) {
  while (section.children.length > 1) section.lastChild.remove();
  const appeal = view.appeal;
  if (appeal) {
    const status = h('div', { class: `appeal-status appeal-${appeal.status}`, dataset: { testid: 'appeal-status', status: appeal.status }, tabindex: '-1', role: 'status' });
    if (justRecorded) status.appendChild(h('p', { class: 'appeal-recorded', text: t('appeal.recorded') }));
    const when = appeal.status === 'pending' ? appeal.created_at : (appeal.decided_at || appeal.created_at);
    status.appendChild(h('p', { text: t(`appeal.status_${appeal.status}`, { date: formatDateTime(when) }) }));
    if (appeal.answer) {
      status.appendChild(h('p', { class: 'appeal-answer-label', text: t('appeal.answer') }));
      status.appendChild(h('p', { class: 'appeal-answer statement-text', dataset: { testid: 'appeal-answer' }, text: appeal.answer }));
    }
    section.appendChild(status);
    if (justRecorded) status.focus();
    return;
  }
  if (view.lifted) {
    section.appendChild(h('p', { class: 'hint', dataset: { testid: 'appeal-status', status: 'lifted' }, text: t('appeal.lifted') }));
    return;
  }
  if (view.appeal_until && Date.now() > view.appeal_until) {
    section.appendChild(h('p', { class: 'hint', dataset: { testid: 'appeal-status', status: 'expired' }, text: t('appeal.expired') }));
    return;
  }
  section.appendChild(h('p', { class: 'appeal-how', text: t('appeal.how', { date: view.appeal_until ? formatDateTime(view.appeal_until) : '' }) }));
  formCounter += 1;
  const ids = { text: `appeal-text-${formCounter}`, error: `appeal-error-${formCounter}`, counter: `appeal-counter-${formCounter}` };
  const open = h('button', { type: 'button', class: 'btn btn-primary-ghost', dataset: { testid: 'appeal-open' }, 'aria-expanded': 'false' }, t('appeal.open'));
  const textarea = h('textarea', {
    id: ids.text, rows: '4', maxlength: String(APPEAL_MAX), dataset: { testid: 'appeal-text' },
    'aria-describedby': ids.counter,
  });
  const counter = h('span', { class: 'counter', id: ids.counter, 'aria-live': 'off' });
  const error = h('p', { class: 'field-error', id: ids.error, hidden: true, role: 'alert' });
  const submit = h('button', { type: 'submit', class: 'btn btn-primary', dataset: { testid: 'appeal-submit' } }, t('appeal.submit'));
  const form = h('form', { class: 'appeal-form', hidden: true, novalidate: true },
    h('div', { class: 'field' },
      h('label', { for: ids.text, text: t('appeal.label') }),
      textarea,
      h('p', { class: 'hint hint-row' }, h('span', { text: t('appeal.hint') }), counter),
      error),
    h('div', { class: 'form-actions' }, submit));
  const updateCounter = () => {
    const n = [...textarea.value].length;
    counter.textContent = t('common.counter', { n, max: APPEAL_MAX });
  };
  updateCounter();
  textarea.addEventListener('input', () => {
    updateCounter();
    setError(null);
  });
  function setError(message) {
    error.textContent = message || '';
    error.hidden = !message;
    if (message) {
      textarea.setAttribute('aria-invalid', 'true');
      textarea.setAttribute('aria-describedby', `${ids.counter} ${ids.error}`);
    } else {
      textarea.removeAttribute('aria-invalid');
      textarea.setAttribute('aria-describedby', ids.counter);
    }
  }
  open.addEventListener('click', () => {
    form.hidden = false;
    open.hidden = true;
    open.setAttribute('aria-expanded', 'true');
    textarea.focus();
  });
  let busy = false;
  form.addEventListener('submit', async (e) => {
    e.preventDefault();
    if (busy) return;
    const text = textarea.value.trim();
    if (!text) {
      setError(t('appeal.empty'));
      textarea.focus();
      return;
    }
    busy = true;
    submit.disabled = true;
    submit.setAttribute('aria-busy', 'true');
    const res = await api.appeal(view.id, text, getLang());
    busy = false;
    submit.disabled = false;
    submit.removeAttribute('aria-busy');
    if (res.ok && res.data && res.data.id) {
      if (opts.onChange) opts.onChange(res.data);
      Object.assign(view, res.data);
      renderAppeal(section, view, opts, heading, true);
      return;
    }
    let message;
    if (res.status === 0) message = t('error.network');
    else if (res.status === 429) message = t('page.rate_limited'); // the server's text lacks what is limited
    else message = errorsOf(res, t('error.generic'))[0].message || t('error.generic');
    if (res.status === 409) {
      // Appealed meanwhile (another tab) or too late: show the current state.
      const fresh = await api.decision(view.id, getLang());
      if (fresh.ok && fresh.data && fresh.data.id) {
        Object.assign(view, fresh.data);
        if (opts.onChange) opts.onChange(fresh.data);
        if (view.appeal) {
          renderAppeal(section, view, opts, heading, false);
          return;
        }
      }
    }
    setError(message);
    textarea.focus();
  });
  section.appendChild(open);
  section.appendChild(form);
}
