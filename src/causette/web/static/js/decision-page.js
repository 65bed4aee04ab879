// The page /decision/<code>: a statement of reasons and its appeal form, in French or English.

import { api } from './api.js';
import { h } from './dom.js';
import { getLang, t } from './i18n.js';
import { startDocPage } from './doc-page.js';
import { renderStatement } from './statement.js';

startDocPage({
  prefix: 'D',
  titleKey: 'decisionpage.title',
  notFoundKey: 'decisionpage.not_found',
  load: (code) => api.decision(code, getLang()),
  render(root, view) {
    root.removeAttribute('aria-busy');
    // Re-rendered after a language change: the same container keeps an appeal being written.
    const body = root.querySelector('[data-testid=decision-statement]') || h('div', { dataset: { testid: 'decision-statement' } });
    renderStatement(body, view, { heading: 'h2' });
    root.replaceChildren(body, h('p', { class: 'doc-note', text: t('decisionpage.keep') }));
  },
});
