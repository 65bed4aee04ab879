// Dialogs (settings, a person's actions, confirmation) and toasts.

import { byId, clear, h } from '../dom.js';
import { t } from '../i18n.js';
import { state } from '../state.js';
import { profileSummary } from './format.js';

let actions = null;
let wired = false;
let personShown = null; // {id, name}
let restoreFocus = null;

export function initDialogs(a) {
  actions = a;
  if (wired) return;
  wired = true;
  byId('settings-button').addEventListener('click', openSettings);
  byId('settings-form').addEventListener('change', (e) => {
    if (e.target.name === 'pm_policy') {
      byId('pm-policy-status').textContent = '';
      actions.command({ type: 'prefs', pm_policy: e.target.value, ref: 'prefs' });
    }
  });
  byId('person-close').addEventListener('click', () => byId('person-dialog').close());
  byId('person-dm').addEventListener('click', () => {
    const p = personShown;
    byId('person-dialog').close();
    if (p) actions.openDm(p.id);
  });
  byId('person-block').addEventListener('click', () => {
    const p = personShown;
    byId('person-dialog').close();
    if (p) actions.confirmBlock(p.id, p.name);
  });
  byId('person-report').addEventListener('click', () => {
    const p = personShown;
    byId('person-dialog').close();
    if (p) actions.report({ target: 'person', id: p.id, name: p.name });
  });
  for (const id of ['settings-dialog', 'person-dialog', 'confirm-dialog']) {
    byId(id).addEventListener('close', () => {
      if (restoreFocus && document.contains(restoreFocus) && id !== 'confirm-dialog') restoreFocus.focus();
    });
    // Click on the backdrop closes.
    byId(id).addEventListener('click', (e) => {
      if (e.target === e.currentTarget) e.currentTarget.close('cancel');
    });
  }
}

function openModal(dialog) {
  restoreFocus = document.activeElement;
  if (!dialog.open) dialog.showModal();
}

export function openSettings() {
  renderSettings();
  byId('pm-policy-status').textContent = '';
  openModal(byId('settings-dialog'));
}

/** Fill the settings dialog from the state (also on a `prefs` or `blocks` event). */
export function renderSettings() {
  for (const radio of document.querySelectorAll('#settings-form input[name=pm_policy]')) {
    radio.checked = radio.value === state.prefs.pm_policy;
  }
  const list = byId('blocked-list');
  clear(list);
  const blocked = Array.from(state.blocked.entries()).sort((a, b) => a[1].localeCompare(b[1]));
  byId('blocked-empty').hidden = blocked.length > 0;
  for (const [id, name] of blocked) {
    list.appendChild(h('li', { class: 'blocked-row', dataset: { testid: 'blocked-row', personId: id } },
      h('span', { class: 'blocked-name', text: name }),
      h('button', {
        type: 'button', class: 'btn btn-small btn-ghost', dataset: { testid: 'unblock' },
        onclick: () => actions.command({ type: 'unblock', person: id, ref: `unblock:${id}` }),
      }, t('settings.unblock'), h('span', { class: 'sr-only', text: ` ${name}` }))));
  }
}

export function prefsSaved() {
  if (byId('settings-dialog').open) byId('pm-policy-status').textContent = t('settings.saved');
}

/** A person's actions (from a message author): private message, block. */
export function openPerson(id, name) {
  personShown = { id, name };
  const profile = state.profiles.get(id);
  byId('person-title').textContent = name;
  byId('person-details').textContent = profile ? profileSummary(profile) : '';
  byId('person-details').hidden = !profile;
  const blocked = state.blocked.has(id);
  byId('person-dm').hidden = blocked;
  byId('person-block').hidden = blocked;
  byId('person-report').setAttribute('aria-label', t('report.person_label', { name }));
  openModal(byId('person-dialog'));
}

/** Ask for confirmation; resolves true when confirmed. */
export function confirmDialog({ title, text, ok }) {
  const dialog = byId('confirm-dialog');
  byId('confirm-title').textContent = title;
  byId('confirm-text').textContent = text;
  byId('confirm-ok').textContent = ok;
  const opener = document.activeElement;
  dialog.returnValue = '';
  return new Promise((resolve) => {
    dialog.addEventListener('close', () => {
      resolve(dialog.returnValue === 'ok');
      if (opener && document.contains(opener)) opener.focus();
    }, { once: true });
    dialog.showModal();
    byId('confirm-cancel').focus();
  });
}

export function closeAllDialogs() {
  for (const id of ['settings-dialog', 'person-dialog', 'confirm-dialog', 'report-dialog', 'decision-dialog']) {
    const d = byId(id);
    if (d.open) d.close('cancel');
  }
}

/**
 * A short message at the bottom of the screen. kind: 'info' | 'error'.
 * link: {href, text} opens in a new tab (e.g. a case page).
 */
export function toast(message, kind = 'info', { timeout = 8000, link = null } = {}) {
  const box = byId('toasts');
  const text = h('p', { class: 'toast-text', text: message });
  if (link) {
    text.appendChild(document.createTextNode(' '));
    text.appendChild(h('a', {
      class: 'toast-link', href: link.href, target: '_blank', rel: 'noopener', dataset: { testid: 'toast-link' },
    }, link.text, h('span', { class: 'sr-only', text: ` ${t('common.new_tab')}` })));
  }
  const item = h('div', { class: `toast toast-${kind}`, role: kind === 'error' ? 'alert' : 'status', dataset: { testid: 'toast' } },
    text,
    h('button', {
      type: 'button', class: 'btn btn-ghost btn-icon toast-close', 'aria-label': t('common.close'),
      onclick: () => item.remove(),
    }, '×'));
  box.appendChild(item);
  while (box.children.length > 4) box.firstChild.remove();
  if (timeout) setTimeout(() => item.remove(), timeout);
  return item;
}

export function clearToasts() {
  clear(byId('toasts'));
}
