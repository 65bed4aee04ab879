// Appeals (DSA art. 20): decided by another moderator than the author of the decision.

import { api } from './api.js';
import { h, replaceChildren, uid } from '../js/dom.js';
import { formatDateTime, t } from './i18n.js';
import { actionLabel, categoryLabel } from './labels.js';

const ANSWER_MIN = 10;
const ANSWER_MAX = 2000;

/** A sentence with a code in it, the code kept on one line. */
function withCode(sentence, code) {
  const [before, after] = sentence.split('\u0000');
  return [before, h('code', { class: 'nowrap', text: code }), after || ''];
}

export class Appeals {
  constructor({ list, empty, count, toast }) {
    this.list = list;
    this.empty = empty;
    this.count = count;
    this.toast = toast;
    this.items = [];
    this.drafts = new Map();
    this.seq = 0;
  }

  setCount(n) {
    this.count.textContent = n ? String(n) : '';
  }

  async load() {
    const mine = ++this.seq;
    const res = await api.appeals();
    if (mine !== this.seq || !res.ok) return;
    this.items = res.data.appeals;
    this.setCount(this.items.length);
    this.render();
  }

  render() {
    const focusedId = document.activeElement && document.activeElement.dataset
      ? document.activeElement.dataset.appealField : undefined;
    this.empty.hidden = this.items.length > 0;
    replaceChildren(this.list, this.items.map((a) => this.row(a)));
    if (focusedId) {
      const el = this.list.querySelector(`[data-appeal-field="${CSS.escape(focusedId)}"]`);
      if (el) el.focus();
    }
  }

  row(a) {
    const d = a.decision;
    const answerId = uid('answer');
    const error = h('p', { class: 'field-error', id: `${answerId}-error`, hidden: true });
    const formError = h('div', { class: 'form-error', role: 'alert', tabindex: '-1', hidden: true });
    const answer = h('textarea', {
      id: answerId, rows: '3', maxlength: String(ANSWER_MAX), required: true,
      'aria-describedby': `${answerId}-hint ${answerId}-error`,
      dataset: { testid: 'mod-appeal-answer', appealField: `${a.id}:answer` },
      disabled: a.mine,
    });
    answer.value = this.drafts.get(a.id) || '';
    answer.addEventListener('input', () => this.drafts.set(a.id, answer.value));
    const decide = async (grant, button) => {
      error.hidden = true;
      formError.hidden = true;
      answer.removeAttribute('aria-invalid');
      const text = answer.value.trim();
      if (text.length < ANSWER_MIN || text.length > ANSWER_MAX) {
        error.textContent = t('appeals.need_answer', { min: ANSWER_MIN, max: ANSWER_MAX });
        error.hidden = false;
        answer.setAttribute('aria-invalid', 'true');
        answer.focus();
        return;
      }
      button.disabled = true;
      const res = await api.decideAppeal(a.id, grant, text);
      button.disabled = false;
      if (res.ok) {
        this.drafts.delete(a.id);
        this.items = this.items.filter((x) => x.id !== a.id);
        this.setCount(this.items.length);
        this.render();
        this.toast(t(grant ? 'appeals.granted' : 'appeals.rejected', { id: d.id }));
        return;
      }
      const e = res.errors[0];
      if (e.field === 'answer') {
        error.textContent = e.message;
        error.hidden = false;
        answer.setAttribute('aria-invalid', 'true');
        answer.focus();
      } else {
        formError.textContent = e.message || t('error.generic');
        formError.hidden = false;
        formError.focus();
      }
    };
    const grant = h('button', { type: 'button', class: 'btn btn-primary', disabled: a.mine, dataset: { testid: 'mod-appeal-grant', appealField: `${a.id}:grant` }, text: t('appeals.grant') });
    const reject = h('button', { type: 'button', class: 'btn', disabled: a.mine, dataset: { testid: 'mod-appeal-reject', appealField: `${a.id}:reject` }, text: t('appeals.reject') });
    grant.addEventListener('click', () => decide(true, grant));
    reject.addEventListener('click', () => decide(false, reject));
    const by = d.automated ? t('decision.automated') : (d.moderator || t('decision.someone'));
    const titleId = uid('appeal');
    return h('li', { class: 'card appeal', dataset: { testid: 'mod-appeal-row', appeal: a.id }, 'aria-labelledby': titleId },
      h('h2', { id: titleId, class: 'appeal-title' }, withCode(t('appeals.against', { id: '\u0000', action: actionLabel(d.action) }), d.id)),
      h('p', { class: 'muted small', text: t('appeals.received', { when: formatDateTime(a.created_at) }) }),
      h('blockquote', { class: 'appeal-text', dataset: { testid: 'mod-appeal-text' }, text: a.text }),
      h('div', { class: 'appeal-decision' },
        h('p', { class: 'dec-head' },
          h('strong', { text: actionLabel(d.action) }), ' · ', categoryLabel(d.category, d.category_label),
          a.case ? [' · ', t('appeals.case'), ' ', h('code', { text: a.case.id })] : null,
          a.case && a.case.subject_name ? [' · ', h('bdi', { text: a.case.subject_name })] : null),
        h('p', { class: 'dec-facts', text: d.facts }),
        h('p', { class: 'muted small' },
          t('decision.by', { who: by, when: formatDateTime(d.created_at) }),
          d.expires_at ? ` · ${t('decision.until', { when: formatDateTime(d.expires_at) })}` : ` · ${t('decision.no_end')}`)),
      a.mine ? h('p', { class: 'banner', role: 'note', dataset: { testid: 'mod-appeal-mine' }, text: t('appeals.mine') }) : null,
      formError,
      h('div', { class: 'field' },
        h('label', { for: answerId, text: t('appeals.answer') }), answer,
        h('p', { class: 'hint', id: `${answerId}-hint`, text: t('appeals.answer_hint') }), error),
      h('div', { class: 'button-row' }, grant, reject));
  }
}
