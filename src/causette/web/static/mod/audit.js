// The audit log (admins): newest first, paged back in time; exports as CSV and JSON.

import { api } from './api.js';
import { clear, h } from '../js/dom.js';
import { formatDateTime, t } from './i18n.js';

export class Audit {
  constructor({ rows, more }) {
    this.rows = rows;
    this.more = more;
    this.before = null;
    this.entries = [];
    more.addEventListener('click', () => this.load(false));
  }

  async load(reset = true) {
    if (reset) {
      this.before = null;
      this.entries = [];
    }
    const res = await api.audit(this.before);
    if (!res.ok) return;
    this.entries = this.entries.concat(res.data.entries);
    this.before = res.data.before;
    this.more.hidden = !this.before;
    this.render();
  }

  render() {
    clear(this.rows);
    for (const e of this.entries) {
      this.rows.append(h('tr', { dataset: { testid: 'mod-audit-row' } },
        h('td', { class: 'nowrap' }, h('time', { datetime: new Date(e.ts).toISOString(), text: formatDateTime(e.ts) })),
        h('td', { text: e.actor_login ? `${e.actor_login}` : e.actor }),
        h('td', null, h('code', { text: e.action })),
        h('td', { text: e.case_id || '' }),
        h('td', { class: 'wrap', text: e.target }),
        h('td', { class: 'wrap', text: e.reason })));
    }
    if (!this.entries.length) {
      this.rows.append(h('tr', null, h('td', { colspan: '6', class: 'muted', text: t('audit.empty') })));
    }
  }
}
