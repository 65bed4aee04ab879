// The conversation view: header, message log, pending sends, composer, typing line.

import { ICON_FLAG, byId, clear, h, icon } from '../dom.js';
import { formatSoon, formatTime, t, tn } from '../i18n.js';
import { linkify } from '../linkify.js';
import {
  hiddenByBlock, isDm, isMuted, isRoom, roomBySlug, roomState, serverNow, slugOf, state, streamState,
} from '../state.js';
import { nameClass, profileSummary } from './format.js';

let actions = null;
let stick = true; // follow new messages (the person has not scrolled up)
let shownStream = null;
let connected = false;
let wired = false;
let lastTypingSent = 0;
const LIVE_KEEP = 3;
// Errors a retry cannot fix: the bubble offers no "Réessayer".
const NO_RETRY = new Set(['message_blocked', 'muted', 'room_frozen', 'room_closed', 'duplicate_message', 'message_too_long', 'message_forbidden_chars', 'message_empty']);

export function initConversation(a) {
  actions = a;
  if (wired) return;
  wired = true;
  const scroller = byId('log-scroll');
  scroller.addEventListener('scroll', () => {
    stick = atBottom();
    if (stick) byId('new-below').hidden = true;
  }, { passive: true });
  // Keep following the bottom when the log area shrinks (composer grows, phone keyboard opens).
  if ('ResizeObserver' in window) {
    new ResizeObserver(() => { if (stick) scroller.scrollTop = scroller.scrollHeight; }).observe(scroller);
  }
  byId('new-below').addEventListener('click', () => {
    scrollToBottom();
    byId('composer-input').focus();
  });
  byId('load-more').addEventListener('click', () => actions.loadMore());
  byId('leave-room').addEventListener('click', () => {
    const slug = slugOf(state.current);
    if (slug) actions.leaveRoom(slug);
  });
  byId('report-room').addEventListener('click', () => {
    const slug = slugOf(state.current);
    if (!slug) return;
    const room = roomBySlug(slug);
    actions.report({ target: 'room', id: slug, name: room ? room.name : slug });
  });
  byId('composer-notice-view').addEventListener('click', () => {
    if (state.mute) actions.showDecision(state.mute.decision);
  });
  const form = byId('composer');
  const input = byId('composer-input');
  form.addEventListener('submit', (e) => {
    e.preventDefault();
    submit();
  });
  input.addEventListener('keydown', (e) => {
    if (e.key === 'Enter' && !e.shiftKey && !e.isComposing && !e.altKey && !e.ctrlKey && !e.metaKey) {
      e.preventDefault();
      submit();
    }
  });
  input.addEventListener('input', () => {
    updateComposer();
    if (isDm(state.current) && input.value.trim() && !input.readOnly) {
      const now = Date.now();
      if (now - lastTypingSent >= 3000) {
        lastTypingSent = now;
        actions.typing(state.current);
      }
    }
  });
}

function submit() {
  const input = byId('composer-input');
  if (!canSend()) return;
  const text = input.value.replace(/^\s*\n/, '').replace(/\s+$/, '');
  if (!text.trim()) return;
  if ([...text].length > state.limits.max_chars) return;
  if (actions.send(state.current, text)) {
    input.value = '';
    lastTypingSent = 0;
    stick = true;
    updateComposer();
  }
}

function canSend() {
  if (!connected || !state.current || state.ended) return false;
  if (isMuted()) return false;
  if (isRoom(state.current) && roomState(slugOf(state.current)) !== 'open') return false;
  if (isDm(state.current)) {
    const conv = state.convs.get(state.current);
    if (!conv || conv.gone || state.blocked.has(conv.other.id)) return false;
  }
  return true;
}

function atBottom() {
  const s = byId('log-scroll');
  return s.scrollHeight - s.scrollTop - s.clientHeight < 48;
}

export function scrollToBottom() {
  const s = byId('log-scroll');
  s.scrollTop = s.scrollHeight;
  stick = true;
  byId('new-below').hidden = true;
}

function afterAppend() {
  if (stick) scrollToBottom();
  else byId('new-below').hidden = false;
}

/** Connection state changed: enable or disable the composer (typed text is kept). */
export function setConnected(on) {
  connected = on;
  updateComposer();
}

/** Show a stream (or the welcome state when null) from scratch. */
export function renderConversation() {
  const stream = state.current;
  const changed = stream !== shownStream;
  shownStream = stream;
  renderHeader();
  const welcome = byId('conv-welcome');
  const scroller = byId('log-scroll');
  const composer = byId('composer');
  if (!stream) {
    welcome.hidden = false;
    scroller.hidden = true;
    composer.hidden = true;
    byId('new-below').hidden = true;
    byId('typing').textContent = '';
    clear(byId('log'));
    clear(byId('log-pending'));
    actions.renderWelcome(byId('welcome-actions'));
    return;
  }
  welcome.hidden = true;
  scroller.hidden = false;
  composer.hidden = false;
  const keepScroll = !changed && !stick ? scroller.scrollTop : null;
  renderLog();
  renderPending();
  renderTyping();
  updateComposer();
  if (changed) {
    stick = true;
    clear(byId('live'));
  }
  if (keepScroll === null) scrollToBottom();
  else scroller.scrollTop = keepScroll;
}

export function renderHeader() {
  const stream = state.current;
  const title = byId('conv-title');
  const sub = byId('conv-sub');
  const leave = byId('leave-room');
  const report = byId('report-room');
  const label = byId('composer-label');
  if (!stream) {
    title.textContent = t('welcome.heading');
    sub.textContent = '';
    leave.hidden = true;
    report.hidden = true;
    return;
  }
  if (isRoom(stream)) {
    const room = roomBySlug(slugOf(stream));
    title.textContent = room ? room.name : slugOf(stream);
    const bits = [];
    if (room && room.description) bits.push(room.description);
    if (room && Number.isInteger(room.count)) bits.push(tn('rooms.count', room.count));
    sub.textContent = bits.join(' · ');
    leave.hidden = false;
    report.hidden = false;
    const name = room ? room.name : slugOf(stream);
    report.setAttribute('aria-label', t('report.room_label', { room: name }));
    report.title = t('report.room_label', { room: name });
    label.textContent = t('composer.label_room', { room: room ? room.name : slugOf(stream) });
  } else {
    const conv = state.convs.get(stream);
    const other = conv ? conv.other : null;
    title.textContent = t('dm.with', { name: other ? other.name : '?' });
    let text = other ? profileSummary(state.profiles.get(other.id) || other) : '';
    if (conv && conv.gone) text = t('dm.gone', { name: other.name });
    else if (other && state.blocked.has(other.id)) text = t('dm.blocked', { name: other.name });
    sub.textContent = text;
    leave.hidden = true;
    report.hidden = true;
    label.textContent = t('composer.label_dm', { name: other ? other.name : '?' });
  }
}

function visibleItems(stream) {
  const st = streamState(stream);
  if (!st) return [];
  const cutoff = serverNow() - state.limits.lifetime_ms;
  return st.items.filter((m) => m.ts >= cutoff && !(isRoom(stream) && hiddenByBlock(m)));
}

function renderLog() {
  const log = byId('log');
  clear(log);
  const stream = state.current;
  const items = visibleItems(stream);
  for (const msg of items) log.appendChild(messageItem(msg));
  updateLoadMore();
  if (!items.length) log.appendChild(h('li', { class: 'log-empty', text: t(isDm(stream) ? 'log.empty_dm' : 'log.empty_room') }));
}

function updateLoadMore() {
  const st = streamState(state.current);
  const button = byId('load-more');
  const first = st && st.items.length ? st.items[0].seq : null;
  button.hidden = !st || first === null || first <= 1 || st.more === false;
  button.disabled = Boolean(st && st.historyPending) || !connected;
}

function messageItem(msg) {
  const own = state.me && msg.author === state.me.id;
  const cls = ['msg', `msg-${msg.kind}`];
  if (own && msg.kind === 'text') cls.push('msg-own');
  const li = h('li', {
    class: cls.join(' '),
    dataset: { testid: 'msg', seq: msg.seq, id: msg.id, author: msg.author, kind: msg.kind },
  });
  const date = new Date(msg.ts);
  li.appendChild(h('time', { class: 'msg-time', datetime: date.toISOString(), text: formatTime(msg.ts) }));
  const body = h('div', { class: 'msg-body' });
  li.appendChild(body);
  if (msg.kind === 'join' || msg.kind === 'leave') {
    body.appendChild(h('span', { class: 'msg-sys', text: t(`log.${msg.kind}`, { name: msg.name }) }));
    return li;
  }
  if (msg.kind === 'removed') {
    body.appendChild(h('span', { class: 'msg-sys', dataset: { testid: 'msg-removed' }, text: t('log.removed') }));
    return li;
  }
  if (own) {
    body.appendChild(h('span', { class: `msg-author ${nameClass(msg.author)}`, text: msg.name }));
  } else {
    body.appendChild(h('button', {
      type: 'button',
      class: `msg-author ${nameClass(msg.author)}`,
      dataset: { testid: 'msg-author' },
      'aria-haspopup': 'dialog',
      title: t('people.actions_for', { name: msg.name }),
      onclick: () => actions.openPerson(msg.author, msg.name),
    }, msg.name));
  }
  body.appendChild(document.createTextNode(' '));
  const text = h('span', { class: 'msg-text', dataset: { testid: 'msg-text' } });
  text.appendChild(linkify(msg.text));
  body.appendChild(text);
  if (!own) {
    const label = t('report.message_label', { name: msg.name });
    li.appendChild(h('button', {
      type: 'button',
      class: 'msg-report',
      dataset: { testid: 'report-button' },
      'aria-label': label,
      title: label,
      'aria-haspopup': 'dialog',
      onclick: () => actions.report({ target: 'message', id: msg.id, name: msg.name, text: msg.text }),
    }, icon(...ICON_FLAG)));
  }
  return li;
}

/** A moderator removed an item of the shown stream: replace it in place (its seq stays). */
export function markRemoved(msg) {
  if (msg.stream !== state.current) return;
  const log = byId('log');
  for (const li of Array.from(log.children)) {
    if (li.dataset.id === msg.id) {
      const hadFocus = li.contains(document.activeElement);
      const fresh = messageItem(msg);
      li.replaceWith(fresh);
      if (hadFocus) byId('chat-main').focus({ preventScroll: true });
    }
  }
}

/** A message arrived on the shown stream (already in state). */
export function appendMessage(msg) {
  if (msg.stream !== state.current) return;
  if (isRoom(msg.stream) && hiddenByBlock(msg)) return;
  const log = byId('log');
  const empty = log.querySelector('.log-empty');
  if (empty) empty.remove();
  log.appendChild(messageItem(msg));
  updateLoadMore();
  announce(msg);
  afterAppend();
}

/** Older items were added at the top of the shown stream. */
export function prependedHistory() {
  const scroller = byId('log-scroll');
  const before = scroller.scrollHeight;
  const top = scroller.scrollTop;
  const wasStuck = stick;
  renderLog();
  renderPending();
  if (wasStuck) scrollToBottom();
  else scroller.scrollTop = top + (scroller.scrollHeight - before);
}

/** Items expired: remove them from the view. */
export function removeItems(ids) {
  const log = byId('log');
  for (const li of Array.from(log.children)) {
    if (li.dataset.id && ids.has(li.dataset.id)) li.remove();
  }
  updateLoadMore();
}

function announce(msg) {
  if (msg.kind !== 'text' || (state.me && msg.author === state.me.id)) return;
  const live = byId('live');
  live.appendChild(h('p', { text: t('live.message', { name: msg.name, text: msg.text.slice(0, 200) }) }));
  while (live.children.length > LIVE_KEEP) live.firstChild.remove();
}

/** Own messages not yet stored: greyed until ack; failed ones with the error and a retry. */
export function renderPending() {
  const list = byId('log-pending');
  clear(list);
  const stream = state.current;
  for (const p of state.pending.values()) {
    if (p.stream !== stream) continue;
    const failed = p.status === 'failed';
    const held = p.status === 'held';
    const refused = p.status === 'refused';
    let testid = 'msg-pending';
    let extra = '';
    if (failed) [testid, extra] = ['msg-failed', ' msg-failed'];
    else if (held) [testid, extra] = ['msg-held', ' msg-held'];
    else if (refused) [testid, extra] = ['msg-refused', ' msg-failed msg-refused'];
    const li = h('li', {
      class: `msg msg-text msg-own msg-pending${extra}`,
      dataset: { testid, localId: p.localId, status: p.status, code: p.code || null },
    });
    let mark = '…';
    if (failed || refused) mark = '⚠';
    else if (held) mark = '⋯';
    li.appendChild(h('span', { class: 'msg-time', text: mark, 'aria-hidden': 'true' }));
    const body = h('div', { class: 'msg-body' });
    li.appendChild(body);
    body.appendChild(h('span', { class: 'msg-author', text: state.me ? state.me.name : '' }));
    body.appendChild(document.createTextNode(' '));
    const text = h('span', { class: 'msg-text' });
    text.appendChild(linkify(p.text));
    body.appendChild(text);
    if (failed) {
      body.appendChild(h('span', { class: 'msg-status msg-error', dataset: { testid: 'msg-error' } },
        h('span', { text: p.error || t('error.generic') }),
        p.code === 'message_blocked' ? h('button', { type: 'button', class: 'btn btn-small btn-ghost', dataset: { testid: 'msg-rephrase' },
          onclick: () => actions.rephrase(p.localId) }, t('log.rephrase')) : null,
        NO_RETRY.has(p.code) ? null : h('button', { type: 'button', class: 'btn btn-small btn-ghost', dataset: { testid: 'msg-retry' },
          onclick: () => actions.retry(p.localId) }, t('log.retry')),
        h('button', { type: 'button', class: 'btn btn-small btn-ghost', dataset: { testid: 'msg-discard' },
          onclick: () => actions.discard(p.localId) }, t('log.discard'))));
    } else if (held) {
      body.appendChild(h('span', { class: 'msg-status msg-held-note', dataset: { testid: 'msg-held-note' },
        text: t('log.held', { case: p.caseCode || '' }) }));
    } else if (refused) {
      body.appendChild(h('span', { class: 'msg-status msg-error', dataset: { testid: 'msg-error' } },
        h('span', { text: t('log.refused', { code: p.decision || '' }) }),
        p.decision ? h('button', { type: 'button', class: 'btn btn-small btn-ghost', dataset: { testid: 'msg-refused-view' },
          onclick: () => actions.showDecision(p.decision) }, t('log.view_decision')) : null,
        h('button', { type: 'button', class: 'btn btn-small btn-ghost', dataset: { testid: 'msg-discard' },
          onclick: () => actions.discard(p.localId) }, t('log.hide'))));
    } else if (p.status === 'sending') {
      body.appendChild(h('span', { class: 'msg-status', text: t('log.sending') }));
    }
    list.appendChild(li);
  }
  if (list.children.length) afterAppend();
}

export function updateComposer() {
  const input = byId('composer-input');
  const button = byId('send-button');
  const counter = byId('composer-counter');
  const help = byId('composer-help');
  const ok = canSend();
  input.readOnly = !ok;
  if (ok) input.removeAttribute('aria-disabled');
  else input.setAttribute('aria-disabled', 'true');
  const length = [...input.value].length;
  const max = state.limits.max_chars;
  const over = length > max;
  button.disabled = !ok || over || !input.value.trim();
  const lines = input.value.split('\n').length;
  input.rows = Math.max(1, Math.min(6, lines));
  counter.classList.toggle('counter-over', over);
  if (over) counter.textContent = tn('composer.over', length - max);
  else if (length >= Math.floor(max * 0.8)) counter.textContent = tn('composer.remaining', max - length);
  else counter.textContent = '';
  if (over) input.setAttribute('aria-invalid', 'true');
  else input.removeAttribute('aria-invalid');
  let helpKey = 'composer.help';
  const conv = isDm(state.current) ? state.convs.get(state.current) : null;
  const roomNow = isRoom(state.current) ? roomState(slugOf(state.current)) : 'open';
  if (state.ended) helpKey = 'composer.ended';
  else if (!connected) helpKey = 'composer.offline';
  else if (isMuted()) helpKey = 'composer.muted';
  else if (roomNow !== 'open') helpKey = 'composer.readonly';
  else if (conv && conv.gone) helpKey = 'composer.gone';
  else if (conv && state.blocked.has(conv.other.id)) helpKey = 'composer.blocked';
  help.textContent = t(helpKey);
  help.classList.toggle('help-warn', helpKey !== 'composer.help');
  input.placeholder = ok ? t('composer.placeholder') : '';
  renderNotice(roomNow);
  updateLoadMore();
}

/** The banner over the composer: a mute in force, or a room frozen or closed. */
function renderNotice(roomNow) {
  const box = byId('composer-notice');
  const text = byId('composer-notice-text');
  const view = byId('composer-notice-view');
  let kind = null;
  let message = '';
  if (isMuted() && !state.ended) {
    kind = 'mute';
    message = t('mute.banner', { time: formatSoon(state.mute.until), code: state.mute.decision });
  } else if (roomNow === 'frozen' || roomNow === 'closed') {
    kind = roomNow;
    const room = roomBySlug(slugOf(state.current));
    const reason = room && room.stateReason ? room.stateReason : '';
    message = reason ? t(`room.${roomNow}`, { reason }) : t(`room.${roomNow}_noreason`);
  }
  const was = box.hidden ? null : box.dataset.kind;
  box.hidden = !kind;
  box.dataset.kind = kind || '';
  if (text.textContent !== message) text.textContent = message;
  view.hidden = kind !== 'mute';
  if (kind === 'mute') view.setAttribute('aria-label', t('mute.view_label', { code: state.mute.decision }));
  if (kind && kind !== was) {
    // Say it once when it appears (the box itself is not a live region: it is re-rendered often).
    const live = byId('live');
    live.appendChild(h('p', { text: message }));
    while (live.children.length > LIVE_KEEP) live.firstChild.remove();
  }
}

/** Show "X écrit…" for the shown stream. */
export function renderTyping() {
  const el = byId('typing');
  const entry = state.typing.get(state.current);
  el.textContent = entry ? t('dm.typing', { name: entry.name }) : '';
}

/** After a language change. */
export function rerender() {
  renderConversation();
}
