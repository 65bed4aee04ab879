// Moderation decisions about me: the statement-of-reasons dialog (with the appeal form), the
// ban cookie, and the mute in force. Nothing is silent: every decision is shown once per tab
// (and again when its appeal or its lifting changes it).

import { api } from '../api.js';
import { byId, h } from '../dom.js';
import { getLang, onLangChange, t } from '../i18n.js';
import { serverNow, state } from '../state.js';
import { renderStatement } from '../statement.js';

const SEEN_KEY = 'causette_seen_decisions';
const MAX_TIMER = 2 ** 31 - 1;

let actions = null;
let wired = false;
const queue = []; // decision ids waiting to be shown
let shown = null; // id of the decision in the dialog
let muteTimer = null;
let opener = null;

export function initDecisions(a) {
  actions = a;
  if (wired) return;
  wired = true;
  const dialog = byId('decision-dialog');
  byId('decision-ok').addEventListener('click', () => dialog.close('ok'));
  byId('decision-close').addEventListener('click', () => dialog.close('cancel'));
  byId('decision-return').addEventListener('click', () => {
    dialog.close('return');
    actions.returnToEntry();
  });
  dialog.addEventListener('close', () => {
    shown = null;
    if (queue.length) {
      showNext();
      return;
    }
    if (opener && document.contains(opener)) opener.focus();
    opener = null;
  });
  onLangChange(() => {
    // Labels are ours; the category and ground come in the session's language: refetch them.
    if (shown && dialog.open) refresh(shown);
  });
}

function seenKey(view) {
  return `${view.id}:${view.appeal ? view.appeal.status : ''}:${view.lifted ? 1 : 0}`;
}

function seen() {
  try {
    const v = JSON.parse(sessionStorage.getItem(SEEN_KEY) || '[]');
    return Array.isArray(v) ? v : [];
  } catch {
    return [];
  }
}

function markSeen(view) {
  const list = seen().filter((k) => k !== seenKey(view));
  list.push(seenKey(view));
  try { sessionStorage.setItem(SEEN_KEY, JSON.stringify(list.slice(-50))); } catch { /* ignore */ }
}

/** A `decision` event: remember it, apply a mute or its lifting, show the statement. */
export function onDecision(view, banToken) {
  if (!view || !view.id) return;
  if (banToken) api.banCookie(banToken); // an HttpOnly cookie: the ban holds without the network
  remember(view);
  enqueue(view, true);
}

/** `welcome.decisions`: the decisions in force (a mute). Shown once per tab. */
export function onWelcomeDecisions(list) {
  let muteSeen = false;
  for (const view of list || []) {
    if (!view || !view.id) continue;
    remember(view);
    if (view.action === 'mute' && !view.lifted) muteSeen = true;
    enqueue(view, false);
  }
  // The welcome is authoritative: no mute listed, none in force (lifted or over meanwhile).
  if (!muteSeen && state.mute) clearMute();
}

function remember(view) {
  state.decisions.set(view.id, view);
  if (view.action !== 'mute') return;
  if (view.lifted) {
    if (state.mute && state.mute.decision === view.id) {
      clearMute();
      actions.toast(t('mute.lifted'), 'info');
    }
  } else if (view.expires_at && view.expires_at > serverNow()) {
    setMute({ decision: view.id, until: view.expires_at });
  }
}

function enqueue(view, always) {
  const key = seenKey(view);
  if (!always && seen().includes(key)) return;
  if (queue.includes(view.id) || shown === view.id) {
    if (shown === view.id) renderShown();
    return;
  }
  queue.push(view.id);
  if (!byId('decision-dialog').open) showNext();
}

function showNext() {
  const id = queue.shift();
  if (!id) return;
  openDecision(id);
}

/** Open the dialog on a decision (known, or fetched by its code). */
export async function openDecision(id) {
  const dialog = byId('decision-dialog');
  if (!state.decisions.has(id)) {
    const res = await api.decision(id, getLang());
    if (!res.ok || !res.data || !res.data.id) {
      actions.toast(t('decision.unavailable'), 'error');
      return;
    }
    state.decisions.set(id, res.data);
  }
  if (dialog.open && shown !== id) {
    if (!queue.includes(id)) queue.unshift(id);
    return;
  }
  shown = id;
  renderShown();
  if (!dialog.open) {
    if (!opener) opener = document.activeElement;
    dialog.showModal();
    // From the top: what was decided comes first (the dialog may scroll on a phone).
    byId('decision-title').focus();
    dialog.scrollTop = 0;
  }
}

function renderShown() {
  const view = state.decisions.get(shown);
  if (!view) return;
  markSeen(view);
  renderStatement(byId('decision-body'), view, {
    heading: 'h3',
    onChange: (fresh) => {
      state.decisions.set(fresh.id, fresh);
      markSeen(fresh);
    },
  });
  const link = byId('decision-link');
  link.href = `/decision/${encodeURIComponent(view.id)}`;
  link.textContent = t('decision.page_link');
  link.appendChild(h('span', { class: 'sr-only', text: ` ${t('common.new_tab')}` }));
  renderEnded();
}

async function refresh(id) {
  const res = await api.decision(id, getLang());
  if (res.ok && res.data && res.data.id) state.decisions.set(id, res.data);
  if (shown === id) renderShown();
}

/** The session was ended by a moderator (`bye` kicked/excluded): keep the decision in view. */
export function sessionEnded(code) {
  const dialog = byId('decision-dialog');
  const id = lastPersonalDecision(code);
  if (id && !dialog.open) openDecision(id);
  else renderEnded();
}

/** The decision behind a kick or a ban (the latest of that kind). */
export function lastPersonalDecision(code) {
  const action = code === 'kicked' ? 'kick' : 'ban';
  let best = null;
  for (const view of state.decisions.values()) {
    if (view.action === action && (!best || view.created_at >= best.created_at)) best = view;
  }
  return best ? best.id : null;
}

function renderEnded() {
  const ended = state.ended;
  const note = byId('decision-ended');
  const ret = byId('decision-return');
  const ok = byId('decision-ok');
  if (!ended) {
    note.hidden = true;
    ret.hidden = true;
    ok.hidden = false;
    return;
  }
  note.hidden = false;
  note.textContent = t(ended.code === 'kicked' ? 'ended.kicked' : 'ended.excluded');
  ret.hidden = ended.code !== 'kicked';
  ok.hidden = false;
}

// --- mute -------------------------------------------------------------------------------------

function setMute(mute) {
  state.mute = mute;
  clearTimeout(muteTimer);
  const wait = Math.max(0, mute.until - serverNow());
  muteTimer = setTimeout(checkMute, Math.min(MAX_TIMER, wait + 250));
  actions.muteChanged();
}

function checkMute() {
  if (!state.mute) return;
  if (state.mute.until <= serverNow()) {
    clearMute();
    actions.toast(t('mute.over'), 'info');
  } else {
    setMute(state.mute);
  }
}

export function clearMute() {
  clearTimeout(muteTimer);
  muteTimer = null;
  if (!state.mute) return;
  state.mute = null;
  actions.muteChanged();
}

/** An `error` muted with details {decision, until}: the mute is in force (another tab, a node). */
export function onMutedError(details) {
  if (!details || !details.decision || !Number.isFinite(details.until)) return;
  if (details.until > serverNow()) setMute({ decision: details.decision, until: details.until });
}

/** Forget everything (the session is over). */
export function resetDecisions() {
  queue.length = 0;
  shown = null;
  clearTimeout(muteTimer);
  muteTimer = null;
}
