// The page /case/<code>: what became of a report, in French or English. No personal data:
// the server says only the status, the outcome, the category and the dates.

import { api } from './api.js';
import { h } from './dom.js';
import { formatDateTime, getLang, t } from './i18n.js';
import { startDocPage } from './doc-page.js';

function statusText(data) {
  if (data.status === 'open') return t('casepage.status_open');
  if (data.outcome === 'actioned') return t('casepage.status_actioned');
  if (data.outcome === 'dismissed') return t('casepage.status_dismissed');
  return t('casepage.status_closed');
}

startDocPage({
  prefix: 'C',
  titleKey: 'casepage.title',
  notFoundKey: 'casepage.not_found',
  load: (code) => api.caseStatus(code, getLang()),
  render(root, data) {
    const open = data.status === 'open';
    const rows = [
      [t('casepage.code'), h('span', { class: 'code', text: data.case || '' }), 'case-code'],
      [t('casepage.category'), data.category_label || data.category || '', 'case-category'],
      [t('casepage.created'), data.created_at ? formatDateTime(data.created_at) : '', 'case-created'],
    ];
    if (!open && data.decided_at) rows.push([t('casepage.decided'), formatDateTime(data.decided_at), 'case-decided']);
    root.replaceChildren(
      h('p', {
        class: `doc-status ${open ? 'is-open' : 'is-closed'}`,
        dataset: { testid: 'case-status', status: data.status || '', outcome: data.outcome || '' },
        text: statusText(data),
      }),
      h('dl', { class: 'statement-list' },
        rows.map(([label, value, testid]) => [h('dt', { text: label }), h('dd', { dataset: { testid } }, value)])),
      h('p', { class: 'doc-note', text: t('casepage.privacy') }),
      h('p', { class: 'doc-urgent', text: t('casepage.urgent') }),
    );
  },
});
