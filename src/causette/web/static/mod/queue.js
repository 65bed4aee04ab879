// The queue of open cases: most severe first, then oldest. Kept live by /mod/ws `case` events.

import { h, replaceChildren } from '../js/dom.js';
import { formatAge, formatDateTime, t, tn } from './i18n.js';
import { categoryLabel, severityBadge, targetLabel } from './labels.js';

function order(a, b) {
  return a.severity - b.severity || a.created_at - b.created_at || (a.id < b.id ? -1 : 1);
}

export class Queue {
  constructor({ list, empty, count, onOpen, onChange }) {
    this.onChange = onChange || (() => {});
    this.list = list;
    this.empty = empty;
    this.count = count;
    this.onOpen = onOpen;
    this.cases = new Map();
    this.selected = null;
  }

  load(cases) {
    this.cases = new Map(cases.map((c) => [c.id, c]));
    this.render();
  }

  /** A case appeared or changed. Returns true when it is new in the queue. */
  upsert(summary) {
    const known = this.cases.has(summary.id);
    if (summary.status === 'open') this.cases.set(summary.id, summary);
    else this.cases.delete(summary.id);
    this.render();
    return !known && summary.status === 'open';
  }

  remove(id) {
    this.cases.delete(id);
    this.render();
  }

  select(id) {
    this.selected = id;
    for (const row of this.list.querySelectorAll('[data-case]')) {
      if (row.dataset.case === id) row.setAttribute('aria-current', 'true');
      else row.removeAttribute('aria-current');
    }
  }

  /** The case after this one (to go on with once it is handled). */
  next(id) {
    const sorted = [...this.cases.values()].sort(order);
    const i = sorted.findIndex((c) => c.id === id);
    if (i >= 0) return sorted[i + 1] || sorted[i - 1] || null;
    return sorted[0] || null;
  }

  focusRow(id) {
    const row = this.list.querySelector(`[data-case="${CSS.escape(id)}"]`);
    if (row) row.focus();
    return Boolean(row);
  }

  render() {
    const focused = document.activeElement && document.activeElement.dataset
      ? document.activeElement.dataset.case : undefined;
    const sorted = [...this.cases.values()].sort(order);
    this.count.textContent = sorted.length ? String(sorted.length) : '';
    this.empty.hidden = sorted.length > 0;
    replaceChildren(this.list, sorted.map((c) => h('li', null, this.row(c))));
    if (focused) this.focusRow(focused);
    this.onChange(sorted.length);
  }

  row(c) {
    return h('button', {
      type: 'button',
      class: 'case-row',
      dataset: { testid: 'mod-case-row', case: c.id, severity: c.severity },
      'aria-current': c.id === this.selected ? 'true' : null,
      onclick: () => this.onOpen(c.id),
    },
    h('span', { class: 'row-top' },
      severityBadge(c.severity),
      h('span', { class: 'row-cat', text: categoryLabel(c.category, c.category_label) })),
    h('span', { class: 'row-meta' },
      h('span', { class: 'tag', text: targetLabel(c.target_kind) }),
      c.subject_name ? h('bdi', { class: 'row-person', text: c.subject_name }) : (c.room ? h('span', { text: `#${c.room}` }) : null),
      h('span', { class: 'row-reporters', text: c.automated && !c.reporters ? '' : tn('queue.reporters', c.reporters) }),
      c.automated ? h('span', { class: 'tag tag-auto', text: t('case.automated') }) : null,
      h('time', {
        class: 'row-age', dataset: { ts: c.created_at }, datetime: new Date(c.created_at).toISOString(),
        title: formatDateTime(c.created_at), text: formatAge(c.created_at),
      })));
  }

  /** Ages move on. */
  tick() {
    for (const el of this.list.querySelectorAll('time[data-ts]')) el.textContent = formatAge(Number(el.dataset.ts));
  }
}
