// One case: what was reported, the frozen evidence, what was already decided, the person's
// sanction history and network, and the forms to act (decide, or dismiss).

import { api } from './api.js';
import { byId, clear, h, replaceChildren, uid } from '../js/dom.js';
import { renderEvidence } from './evidence.js';
import { formatDateTime, t, tn } from './i18n.js';
import {
  actionLabel, allCategories, categoryLabel, durationLabel, keyBadge, severityBadge, targetLabel,
} from './labels.js';

const FACTS_MIN = 10;
const FACTS_MAX = 2000;
const TIMED = new Set(['mute', 'ban']);
const PRESETS = [10, 60, 1440, 10080];

/** The actions that make sense for this case (the server checks again). */
function actionsFor(detail) {
  const c = detail.case;
  const kinds = new Set(detail.evidence.map((e) => e.kind));
  const out = [];
  if (kinds.has('held')) out.push('release', 'refuse');
  if (c.subject) {
    out.push('warn');
    if (kinds.has('message')) out.push('delete_message');
    out.push('mute', 'kick', 'ban');
  }
  if (c.room) out.push('freeze_room', 'close_room', 'reopen_room');
  return out;
}

function section(title, testid, ...children) {
  return h('section', { class: 'case-section', dataset: { testid } }, h('h3', { text: title }), ...children);
}

function decisionItem(d, { withCase = false } = {}) {
  const by = d.automated ? t('decision.automated') : (d.moderator_login || t('decision.someone'));
  const bits = [
    h('p', { class: 'dec-head' },
      h('strong', { text: actionLabel(d.action) }), ' · ',
      h('code', { text: d.id }),
      withCase ? [' · ', h('code', { text: d.case_id })] : null,
      ' · ', categoryLabel(d.category)),
    h('p', { class: 'dec-facts', text: d.facts }),
    h('p', { class: 'muted small' },
      t('decision.by', { who: by, when: formatDateTime(d.created_at) }),
      d.expires_at ? ` · ${t('decision.until', { when: formatDateTime(d.expires_at) })}` : '',
      d.lifted_at ? ` · ${t('decision.lifted', { when: formatDateTime(d.lifted_at) })}` : '',
      d.appeal ? ` · ${t(`appeal.status.${d.appeal.status}`)}` : ''),
  ];
  return h('li', { class: 'dec' }, bits);
}

export class CaseView {
  constructor({ article, placeholder, onDone, onBack, toast }) {
    this.article = article;
    this.placeholder = placeholder;
    this.onDone = onDone;
    this.onBack = onBack;
    this.toast = toast;
    this.detail = null;
    this.id = null;
    this.closedNotice = null;
    this.seq = 0;
  }

  /** Show a case (focus moves to its title). */
  async open(id, { focus = true } = {}) {
    this.id = id;
    const mine = ++this.seq;
    this.placeholder.hidden = true;
    this.article.hidden = false;
    this.article.setAttribute('aria-busy', 'true');
    replaceChildren(this.article, h('p', { class: 'muted', text: t('loading') }));
    const res = await api.case(id);
    if (mine !== this.seq) return;
    this.article.removeAttribute('aria-busy');
    if (!res.ok) {
      replaceChildren(this.article, h('p', { class: 'form-error', role: 'alert', text: res.errors[0].message || t('error.generic') }));
      return;
    }
    this.detail = res.data;
    this.render();
    if (focus) byId('case-title').focus();
  }

  close() {
    this.seq += 1;
    this.id = null;
    this.detail = null;
    this.fields = null;
    clear(this.article);
    this.article.hidden = true;
    this.placeholder.hidden = false;
  }

  /** The case changed elsewhere (a new report joined it, or someone handled it). */
  async changed(summary) {
    if (!this.detail || summary.id !== this.id) return;
    if (summary.status !== 'open') {
      this.detail.case = summary;
      this.render();
      return;
    }
    const res = await api.case(this.id);
    if (res.ok && this.detail && res.data.case.id === this.id) {
      this.detail = res.data;
      this.renderInfo();
    }
  }

  /** Re-render everything (after a language change), keeping what was typed. */
  rerender() {
    if (this.detail) this.render();
  }

  render() {
    const drafts = this.drafts();
    const d = this.detail;
    this.header = h('div');
    this.info = h('div', { class: 'case-info' });
    const open = d.case.status === 'open';
    this.actions = open ? this.actionForms(d) : null;
    if (!open) this.fields = null;
    replaceChildren(this.article, this.header, this.info, this.actions);
    this.renderInfo();
    this.restore(drafts);
  }

  renderInfo() {
    const d = this.detail;
    const c = d.case;
    replaceChildren(this.header,
      h('button', { type: 'button', class: 'btn btn-quiet back', onclick: () => this.onBack(), text: t('case.back') }),
      h('h2', { id: 'case-title', tabindex: '-1', text: t('case.title', { id: c.id }) }),
      h('p', { class: 'case-badges' },
        severityBadge(c.severity), ' ',
        h('span', { class: 'tag', text: categoryLabel(c.category, c.category_label) }), ' ',
        h('span', { class: 'tag', text: targetLabel(c.target_kind) }),
        c.automated ? [' ', h('span', { class: 'tag tag-auto', text: t('case.automated') })] : null),
      h('dl', { class: 'facts case-facts' },
        h('dt', { text: t('case.person') }), h('dd', null, c.subject_name ? h('bdi', { text: c.subject_name }) : '—'),
        h('dt', { text: t('case.room') }), h('dd', { text: c.room ? `#${c.room}` : '—' }),
        h('dt', { text: t('case.opened') }), h('dd', { text: formatDateTime(c.created_at) }),
        h('dt', { text: t('case.reporters') }), h('dd', { text: String(c.reporters) })),
      c.severity === 1 && c.status === 'open'
        ? h('p', { class: 'banner banner-urgent', role: 'note', text: t('case.emergency') })
        : null,
      c.status !== 'open'
        ? h('p', {
          class: 'banner', role: 'status', dataset: { testid: 'mod-case-closed' },
          text: t(c.outcome === 'dismissed' ? 'case.closed_dismissed' : 'case.closed_actioned'),
        })
        : null);

    const reports = d.reports.length
      ? h('ul', { class: 'reports' }, d.reports.map((r) => h('li', { class: 'report', dataset: { testid: 'mod-report' } },
        h('p', { class: 'dec-head' },
          h('strong', { text: categoryLabel(r.category) }), ' · ',
          formatDateTime(r.created_at)),
        h('p', { class: r.explanation ? 'report-text' : 'muted', text: r.explanation || t('report.no_explanation') }),
        h('p', { class: 'muted small' },
          t('report.by'), ' ', h('bdi', { text: r.reporter_name || t('report.gone') }), ' · ',
          t('report.network'), ' ', keyBadge(r.reporter_key)))))
      : h('p', { class: 'muted', text: t('report.none') });

    const decisions = d.decisions.length
      ? h('ul', { class: 'decisions' }, d.decisions.map((x) => decisionItem(x)))
      : h('p', { class: 'muted', text: t('case.no_decisions') });
    const history = d.history.length
      ? h('ul', { class: 'decisions' }, d.history.map((x) => decisionItem(x, { withCase: true })))
      : h('p', { class: 'muted', text: t('case.no_history') });
    const network = h('div', null,
      h('p', null, t('network.key'), ' ', keyBadge(d.subject_key)),
      d.same_network.length
        ? h('ul', { class: 'network' }, d.same_network.map((s) => h('li', null,
          h('bdi', { text: s.name }), ' · ',
          t('network.since', { when: formatDateTime(s.created_at) }), ' · ',
          s.live ? t('profile.live') : t('network.ended'))))
        : h('p', { class: 'muted', text: t('network.none') }),
      h('p', { class: 'hint', text: t('network.hint') }));

    replaceChildren(this.info,
      section(t('case.evidence'), 'mod-evidence', renderEvidence(d)),
      section(tn('case.reports', d.reports.length), 'mod-reports', reports),
      section(t('case.decisions'), 'mod-decisions', decisions),
      section(t('case.history'), 'mod-history', history),
      section(t('case.network'), 'mod-network', network));
  }

  actionForms(d) {
    const actions = actionsFor(d);
    const ids = { action: uid('action'), minutes: uid('minutes'), category: uid('category'), facts: uid('facts'), reason: uid('reason') };
    const formError = h('div', { class: 'form-error', role: 'alert', tabindex: '-1', hidden: true, dataset: { testid: 'mod-decide-error' } });
    const fieldError = (name) => h('p', { class: 'field-error', id: `${ids[name]}-error`, hidden: true });
    const errs = { action: fieldError('action'), minutes: fieldError('minutes'), category: fieldError('category'), facts: fieldError('facts') };

    const action = h('select', { id: ids.action, name: 'action', required: true, 'aria-describedby': `${ids.action}-error`, dataset: { testid: 'mod-action' } },
      h('option', { value: '', text: t('decide.choose') }),
      actions.map((a) => h('option', { value: a, text: actionLabel(a) })));
    const minutes = h('select', { id: ids.minutes, name: 'minutes', 'aria-describedby': `${ids.minutes}-error`, dataset: { testid: 'mod-minutes' } });
    const minutesField = h('div', { class: 'field', hidden: true },
      h('label', { for: ids.minutes, text: t('decide.duration') }), minutes, errs.minutes);
    const category = h('select', { id: ids.category, name: 'category', 'aria-describedby': `${ids.category}-hint ${ids.category}-error`, dataset: { testid: 'mod-category' } },
      allCategories().map((c) => h('option', { value: c.code, selected: c.code === d.case.category, text: categoryLabel(c.code) })));
    const counter = h('span', { class: 'counter', id: `${ids.facts}-count`, text: `0 / ${FACTS_MAX}` });
    const facts = h('textarea', {
      id: ids.facts, name: 'facts', rows: '4', required: true, minlength: String(FACTS_MIN), maxlength: String(FACTS_MAX),
      'aria-describedby': `${ids.facts}-hint ${ids.facts}-count ${ids.facts}-error`, dataset: { testid: 'mod-facts' },
    });
    facts.addEventListener('input', () => { counter.textContent = `${facts.value.trim().length} / ${FACTS_MAX}`; });
    const submit = h('button', { type: 'submit', class: 'btn btn-primary', dataset: { testid: 'mod-decide' }, text: t('decide.submit') });

    const fillMinutes = () => {
      const a = action.value;
      minutesField.hidden = !TIMED.has(a);
      const previous = minutes.value;
      clear(minutes);
      if (!TIMED.has(a)) return;
      const options = PRESETS.map((m) => h('option', { value: String(m), text: durationLabel(m) }));
      if (a === 'ban') options.push(h('option', { value: 'permanent', text: t('duration.permanent') }));
      minutes.append(...options);
      const fallback = a === 'ban' ? 'permanent' : '60';
      minutes.value = [...minutes.options].some((o) => o.value === previous) ? previous : fallback;
    };
    action.addEventListener('change', fillMinutes);

    const form = h('form', { class: 'decide-form', novalidate: true, dataset: { testid: 'mod-decide-form' } },
      h('h3', { text: t('decide.title') }),
      h('p', { class: 'hint', text: t('decide.intro') }),
      formError,
      h('div', { class: 'field' }, h('label', { for: ids.action, text: t('decide.action') }), action, errs.action),
      minutesField,
      h('div', { class: 'field' },
        h('label', { for: ids.category, text: t('decide.category') }), category,
        h('p', { class: 'hint', id: `${ids.category}-hint`, text: t('decide.category_hint') }), errs.category),
      h('div', { class: 'field' },
        h('label', { for: ids.facts, text: t('decide.facts') }), facts,
        h('p', { class: 'hint', id: `${ids.facts}-hint`, text: t('decide.facts_hint') }), counter, errs.facts),
      submit);

    const show = (box, message) => { box.textContent = message; box.hidden = !message; };
    const fieldOf = { action, minutes, category, facts };
    const resetErrors = () => {
      show(formError, '');
      for (const [name, box] of Object.entries(errs)) { show(box, ''); fieldOf[name].removeAttribute('aria-invalid'); }
    };
    const fieldProblem = (name, message) => {
      show(errs[name], message);
      fieldOf[name].setAttribute('aria-invalid', 'true');
    };

    form.addEventListener('submit', async (ev) => {
      ev.preventDefault();
      resetErrors();
      const text = facts.value.trim();
      let bad = null;
      if (!action.value) { fieldProblem('action', t('decide.need_action')); bad = bad || action; }
      if (text.length < FACTS_MIN || text.length > FACTS_MAX) {
        fieldProblem('facts', t('decide.need_facts', { min: FACTS_MIN, max: FACTS_MAX }));
        bad = bad || facts;
      }
      if (bad) { bad.focus(); return; }
      const body = { action: action.value, facts: text, category: category.value || null };
      if (TIMED.has(action.value) && minutes.value !== 'permanent') body.minutes = Number(minutes.value);
      submit.disabled = true;
      const res = await api.decide(d.case.id, body);
      submit.disabled = false;
      if (res.ok) {
        this.onDone(d.case.id, t('decide.done', { action: actionLabel(body.action), id: d.case.id }));
        return;
      }
      this.showErrors(res.errors, formError, errs, fieldOf, show, fieldProblem);
    });

    // Dismiss: no rule was broken.
    const reasonError = h('p', { class: 'field-error', id: `${ids.reason}-error`, hidden: true });
    const reason = h('textarea', {
      id: ids.reason, name: 'reason', rows: '2', maxlength: String(FACTS_MAX), required: true,
      'aria-describedby': `${ids.reason}-hint ${ids.reason}-error`, dataset: { testid: 'mod-dismiss-reason' },
    });
    const dismissButton = h('button', { type: 'submit', class: 'btn', dataset: { testid: 'mod-dismiss' }, text: t('dismiss.submit') });
    const dismissError = h('div', { class: 'form-error', role: 'alert', tabindex: '-1', hidden: true });
    const dismiss = h('form', { class: 'dismiss-form', novalidate: true },
      h('h3', { text: t('dismiss.title') }),
      dismissError,
      h('div', { class: 'field' },
        h('label', { for: ids.reason, text: t('dismiss.reason') }), reason,
        h('p', { class: 'hint', id: `${ids.reason}-hint`, text: t('dismiss.hint') }), reasonError),
      dismissButton);
    dismiss.addEventListener('submit', async (ev) => {
      ev.preventDefault();
      show(dismissError, '');
      show(reasonError, '');
      reason.removeAttribute('aria-invalid');
      if (!reason.value.trim()) {
        show(reasonError, t('dismiss.need_reason'));
        reason.setAttribute('aria-invalid', 'true');
        reason.focus();
        return;
      }
      dismissButton.disabled = true;
      const res = await api.dismiss(d.case.id, reason.value.trim());
      dismissButton.disabled = false;
      if (res.ok) {
        this.onDone(d.case.id, t('dismiss.done', { id: d.case.id }));
        return;
      }
      const e = res.errors[0];
      if (e.field === 'reason') {
        show(reasonError, e.message);
        reason.setAttribute('aria-invalid', 'true');
        reason.focus();
      } else {
        show(dismissError, e.message || t('error.generic'));
        dismissError.focus();
      }
    });

    this.fields = { action, minutes, category, facts, reason, fillMinutes };
    return h('div', { class: 'case-actions' }, form, dismiss);
  }

  showErrors(errors, formError, errs, fieldOf, show, fieldProblem) {
    let first = null;
    const general = [];
    for (const e of errors) {
      if (e.field && errs[e.field]) {
        fieldProblem(e.field, e.message);
        first = first || fieldOf[e.field];
      } else {
        general.push(e.message || t('error.generic'));
      }
    }
    if (general.length) {
      show(formError, general.join(' '));
      formError.focus();
    } else if (first) {
      first.focus();
    }
  }

  drafts() {
    if (!this.fields) return null;
    const f = this.fields;
    return { id: this.id, action: f.action.value, minutes: f.minutes.value, category: f.category.value, facts: f.facts.value, reason: f.reason.value };
  }

  restore(drafts) {
    if (!drafts || drafts.id !== this.id || !this.fields || !this.fields.action.isConnected) return;
    const f = this.fields;
    f.action.value = drafts.action;
    f.fillMinutes();
    if (drafts.minutes) f.minutes.value = drafts.minutes;
    f.category.value = drafts.category;
    f.facts.value = drafts.facts;
    f.facts.dispatchEvent(new Event('input'));
    f.reason.value = drafts.reason;
  }
}
