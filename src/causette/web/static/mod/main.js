// The moderation console: login, then the live queue, a case, appeals and (admins) the audit log.

import { api, onSignedOut } from './api.js';
import { Appeals } from './appeals.js';
import { Audit } from './audit.js';
import { CaseView } from './case.js';
import { byId } from '../js/dom.js';
import { getLang, initI18n, onLangChange, setLang, t } from './i18n.js';
import { categoryLabel, setCategories } from './labels.js';
import { Live } from './live.js';
import { resetLogin, wireLogin } from './login.js';
import { Queue } from './queue.js';

const VIEWS = ['queue', 'appeals', 'audit'];
let me = null;
let view = 'queue';
let toastTimer = null;
const baseTitle = document.title;

function toast(message) {
  const el = byId('toast');
  el.textContent = message;
  el.hidden = false;
  clearTimeout(toastTimer);
  toastTimer = setTimeout(() => { el.hidden = true; el.textContent = ''; }, 6000);
}

const queue = new Queue({
  list: byId('queue'),
  empty: byId('queue-empty'),
  count: byId('queue-count'),
  onOpen: (id) => openCase(id),
  onChange: (n) => { document.title = n ? `(${n}) ${baseTitle}` : baseTitle; },
});

const caseView = new CaseView({
  article: byId('case'),
  placeholder: byId('case-placeholder'),
  toast,
  onBack: () => closeCase(true),
  onDone: (id, message) => {
    const next = queue.next(id);
    queue.remove(id);
    toast(message);
    closeCase(false);
    if (next && next.id !== id) queue.focusRow(next.id);
    else byId('queue-pane').querySelector('h1').focus();
  },
});

const appeals = new Appeals({ list: byId('appeals'), empty: byId('appeals-empty'), count: byId('appeals-count'), toast });
const audit = new Audit({ rows: byId('audit-rows'), more: byId('audit-more') });

function setLive(state) {
  const el = byId('live');
  el.dataset.state = state;
  byId('live-text').textContent = t(`live.${state}`);
}

async function loadQueue() {
  const res = await api.queue();
  if (!res.ok) return;
  queue.load(res.data.cases);
  appeals.setCount(res.data.appeals);
  if (caseView.id && !queue.cases.has(caseView.id)) {
    const res2 = await api.case(caseView.id);
    if (res2.ok) caseView.changed(res2.data.case);
  }
}

const live = new Live({
  onState: setLive,
  onReady: () => {
    loadQueue();
    if (view === 'appeals') appeals.load();
  },
  onEvent: (event) => {
    if (event.type === 'case') {
      const fresh = queue.upsert(event.case);
      caseView.changed(event.case);
      if (fresh) announce(event.case);
    } else if (event.type === 'appeal') {
      if (view === 'appeals') appeals.load();
      else refreshAppealCount();
    }
  },
  onEnded: (bye) => signedOut(bye.code === 'moderator_required' ? t('login.ended') : bye.message),
  beforeReconnect: async () => {
    const res = await api.me();
    if (res.status === 401) {
      signedOut(t('login.ended'));
      return false;
    }
    return true;
  },
});

async function refreshAppealCount() {
  const res = await api.queue();
  if (res.ok) appeals.setCount(res.data.appeals);
}

function announce(summary) {
  toast(t('queue.new_case', { category: categoryLabel(summary.category, summary.category_label) }));
}

function openCase(id) {
  queue.select(id);
  byId('queue-view').classList.add('showing-case');
  caseView.open(id);
}

function closeCase(focusRow) {
  const id = caseView.id;
  caseView.close();
  queue.select(null);
  byId('queue-view').classList.remove('showing-case');
  if (focusRow && id && !queue.focusRow(id)) byId('queue-pane').querySelector('h1').focus();
}

function show(name) {
  view = name;
  byId('boot').hidden = true;
  byId('login-view').hidden = name !== 'login';
  for (const v of VIEWS) byId(`${v}-view`).hidden = v !== name;
  for (const tab of document.querySelectorAll('.tab')) {
    if (tab.dataset.view === name) tab.setAttribute('aria-current', 'page');
    else tab.removeAttribute('aria-current');
  }
  if (name === 'appeals') appeals.load();
  if (name === 'audit') audit.load(true);
}

async function start(moderator) {
  me = moderator;
  const cats = await api.categories();
  if (cats.ok) setCategories(cats.data.categories);
  byId('tabs').hidden = false;
  byId('logout').hidden = false;
  const who = byId('who');
  who.hidden = false;
  who.textContent = t(me.role === 'admin' ? 'who.admin' : 'who.moderator', { login: me.login });
  document.querySelector('[data-view=audit]').hidden = me.role !== 'admin';
  show('queue');
  live.start();
}

function signedOut(notice) {
  me = null;
  live.stop();
  caseView.close();
  queue.load([]);
  appeals.items = [];
  appeals.setCount(0);
  byId('tabs').hidden = true;
  byId('logout').hidden = true;
  byId('who').hidden = true;
  resetLogin(notice || '');
  show('login');
  byId('f-login').focus();
}

function wireChrome() {
  for (const button of document.querySelectorAll('.lang-btn')) {
    button.addEventListener('click', () => setLang(button.dataset.lang));
  }
  const syncLang = () => {
    for (const b of document.querySelectorAll('.lang-btn')) {
      b.setAttribute('aria-pressed', b.dataset.lang === getLang() ? 'true' : 'false');
    }
  };
  syncLang();
  onLangChange(() => {
    syncLang();
    setLive(byId('live').dataset.state);
    if (me) byId('who').textContent = t(me.role === 'admin' ? 'who.admin' : 'who.moderator', { login: me.login });
    queue.render();
    caseView.rerender();
    appeals.render();
    audit.render();
  });
  for (const tab of document.querySelectorAll('.tab')) {
    tab.addEventListener('click', () => show(tab.dataset.view));
  }
  byId('logout').addEventListener('click', async () => {
    await api.logout();
    signedOut(t('login.bye'));
  });
  onSignedOut(() => signedOut(t('login.ended')));
  wireLogin(start);
  setInterval(() => queue.tick(), 30000);
}

async function boot() {
  await initI18n();
  wireChrome();
  const res = await api.me();
  if (res.ok) {
    start(res.data.moderator);
  } else if (res.status === 401) {
    signedOut('');
  } else {
    const bootEl = byId('boot');
    bootEl.textContent = t('error.unreachable');
  }
}

boot();
