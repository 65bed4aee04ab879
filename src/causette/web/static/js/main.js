// Entry point: load translations, find out whether a session exists, show the right screen.

import { api } from './api.js';
import { byId } from './dom.js';
import { hasStoredLang, initI18n, setLang, t, wireLangButtons } from './i18n.js';
import { startChat } from './ui/chat.js';
import { hideEntry, resetEntryForm, showEntry } from './ui/entry.js';

function enterChat(session, { focus = true } = {}) {
  hideEntry();
  startChat(session, { ended: backToEntry, focus });
}

function backToEntry(message) {
  resetEntryForm();
  showEntry({ entered: enterChat, notice: message || null });
}

async function boot() {
  await initI18n();
  wireLangButtons();
  const bootEl = byId('boot');
  const res = await api.session();
  if (res.ok && res.data && res.data.me) {
    if (!hasStoredLang() && (res.data.lang === 'fr' || res.data.lang === 'en')) setLang(res.data.lang, { remember: false });
    bootEl.hidden = true;
    enterChat(res.data, { focus: false });
  } else if (res.status === 401 || res.status === 403) {
    bootEl.hidden = true;
    showEntry({ entered: enterChat });
  } else {
    // Server unreachable or failing: say so, and retry.
    bootEl.textContent = '';
    const p = document.createElement('p');
    p.textContent = t('error.unreachable');
    const retry = document.createElement('button');
    retry.type = 'button';
    retry.className = 'btn btn-primary';
    retry.textContent = t('common.retry');
    retry.addEventListener('click', () => location.reload());
    bootEl.append(p, retry);
    bootEl.classList.add('boot-error');
  }
}

boot();
