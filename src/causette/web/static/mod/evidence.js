// Frozen evidence, rendered as text: the reported message within its context, the profile,
// a held or blocked message, the rules that matched, the room. Nothing here is ever a link
// or markup: what people wrote is shown exactly as text.

import { h } from '../js/dom.js';
import { formatDateTime, formatTime, t } from './i18n.js';
import { genderLabel, keyBadge, streamLabel } from './labels.js';

function frozenAt(e) {
  return h('p', { class: 'frozen-at', text: t('evidence.frozen_at', { when: formatDateTime(e.captured_at) }) });
}

function line(item, reportedId) {
  const reported = item.id === reportedId;
  if (item.kind === 'join' || item.kind === 'leave') {
    return h('li', { class: 'ev-line ev-system' },
      h('time', { class: 'ev-time', datetime: new Date(item.ts).toISOString(), text: formatTime(item.ts) }),
      ' ',
      h('span', { text: t(`evidence.${item.kind}`, { name: item.name }) }));
  }
  return h('li', {
    class: reported ? 'ev-line ev-reported' : 'ev-line',
    dataset: { testid: reported ? 'mod-evidence-reported' : 'mod-evidence-line' },
    'aria-current': reported ? 'true' : null,
  },
  h('time', { class: 'ev-time', datetime: new Date(item.ts).toISOString(), text: formatTime(item.ts) }),
  ' ',
  h('bdi', { class: 'ev-name', text: item.name }),
  h('span', { class: 'ev-colon', text: ' : ' }),
  h('span', { class: 'ev-text', text: item.text }),
  reported ? h('span', { class: 'ev-mark', text: t('evidence.reported_mark') }) : null);
}

function messageBlock(title, data, e) {
  return h('section', { class: 'ev-block' },
    h('h4', { text: title }),
    h('p', { class: 'ev-where', text: t('evidence.where', { where: streamLabel(data.stream), when: formatDateTime(data.ts) }) }),
    h('ol', { class: 'ev-lines' }, line({ ...data, kind: 'text' }, data.id)),
    frozenAt(e));
}

function contextBlock(data, reportedId, e, kind) {
  const items = Array.isArray(data.items) ? data.items : [];
  const title = kind === 'person'
    ? t('evidence.recent', { where: streamLabel(data.stream) })
    : t('evidence.context', { where: streamLabel(data.stream) });
  return h('section', { class: 'ev-block' },
    h('h4', { text: title }),
    items.length
      ? h('ol', { class: 'ev-lines' }, items.map((item) => line(item, reportedId)))
      : h('p', { class: 'muted', text: t('evidence.no_context') }),
    frozenAt(e));
}

function profileBlock(p, e) {
  const rows = [
    [t('profile.name'), h('bdi', { text: p.name })],
    [t('profile.gender'), genderLabel(p.gender)],
    [t('profile.age'), String(p.age)],
    [t('profile.place'), `${p.commune} (${p.dep})`],
    [t('profile.since'), p.created_at ? formatDateTime(p.created_at) : '—'],
    [t('profile.state'), p.ended_at ? t('profile.ended', { when: formatDateTime(p.ended_at) }) : t('profile.live')],
    [t('profile.network'), keyBadge(p.ip_key)],
  ];
  return h('section', { class: 'ev-block' },
    h('h4', { text: t('evidence.profile') }),
    h('dl', { class: 'facts' }, rows.map(([k, v]) => [h('dt', { text: k }), h('dd', null, v)])),
    frozenAt(e));
}

function heldBlock(kind, d, e) {
  return h('section', { class: 'ev-block' },
    h('h4', { text: t(kind === 'held' ? 'evidence.held' : 'evidence.blocked') }),
    h('p', { class: 'ev-where', text: t('evidence.where', { where: streamLabel(d.stream), when: formatDateTime(d.ts) }) }),
    h('ol', { class: 'ev-lines' }, line({ id: '', kind: 'text', ts: d.ts, name: d.name, text: d.text }, null)),
    rulesList(d.rules),
    frozenAt(e));
}

function rulesList(rules) {
  if (!Array.isArray(rules) || !rules.length) return null;
  return h('div', { class: 'ev-rules' },
    h('p', { class: 'ev-rules-title', text: t('evidence.rules') }),
    h('ul', null, rules.map((r) => h('li', null, h('code', { text: r })))));
}

/** The evidence of a case, in the order it was frozen. */
export function renderEvidence(detail) {
  const evidence = [...detail.evidence].sort((a, b) => a.n - b.n);
  const message = evidence.find((e) => e.kind === 'message');
  const reportedId = message ? message.data.id : null;
  const contextHasIt = evidence.some((e) => e.kind === 'context'
    && Array.isArray(e.data.items) && e.data.items.some((i) => i.id === reportedId));
  const blocks = [];
  for (const e of evidence) {
    const d = e.data || {};
    if (e.kind === 'message') {
      if (!contextHasIt) blocks.push(messageBlock(t('evidence.message'), d, e));
    } else if (e.kind === 'context') {
      blocks.push(contextBlock(d, reportedId, e, detail.case.target_kind));
    } else if (e.kind === 'profile') {
      blocks.push(profileBlock(d, e));
    } else if (e.kind === 'held' || e.kind === 'blocked') {
      blocks.push(heldBlock(e.kind, d, e));
    } else if (e.kind === 'rules') {
      blocks.push(h('section', { class: 'ev-block' }, h('h4', { text: t('evidence.rules_title') }), rulesList(d.rules), frozenAt(e)));
    } else if (e.kind === 'room') {
      blocks.push(h('section', { class: 'ev-block' },
        h('h4', { text: t('evidence.room') }),
        h('p', null, h('bdi', { text: d.name }), ` (#${d.slug})`),
        frozenAt(e)));
    } else {
      blocks.push(h('section', { class: 'ev-block' }, h('h4', { text: e.kind }),
        h('pre', { class: 'ev-raw', text: JSON.stringify(d, null, 2) }), frozenAt(e)));
    }
  }
  if (!blocks.length) blocks.push(h('p', { class: 'muted', text: t('evidence.none') }));
  return blocks;
}
