// The chat screen controller: owns the connection, applies server events to the state and
// asks the views to render.

import { api, errorsOf } from '../api.js';
import { Connection } from '../connection.js';
import { byId, clear } from '../dom.js';
import { getLang, onLangChange, t } from '../i18n.js';
import {
  convWith, cursors, isDm, isRoom, rememberProfile, resetState, roomBySlug, roomState, roomStream, serverNow,
  slugOf, state, streamState, totalUnread,
} from '../state.js';
import {
  appendMessage, initConversation, markRemoved, prependedHistory, removeItems, renderConversation, renderHeader,
  renderPending, renderTyping, scrollToBottom, setConnected, updateComposer,
} from './conversation.js';
import {
  initDecisions, lastPersonalDecision, onDecision, onMutedError, onWelcomeDecisions, openDecision,
  resetDecisions, sessionEnded,
} from './decisions.js';
import { caseHref, initReport, onReportError, onReported, openReport, reportInterrupted } from './report.js';
import {
  closeAllDialogs, confirmDialog, clearToasts, initDialogs, openPerson, prefsSaved, renderSettings, toast,
} from './dialogs.js';
import { applyBlocks, initPeople, onDelta, onPeople, queryPeople, renderFilterOptions, renderPeople } from './people.js';
import { initRooms, renderConvs, renderRooms, renderWelcomeActions, updateRooms } from './rooms.js';
import { initTabs, isPhone, onTabChange, panelVisible, rememberPanelLabels, selectTab } from './tabs.js';

const VIEW_KEY = 'causette_view';
const EXPIRY_CHECK_MS = 30000;
const TYPING_SHOW_MS = 5000;

let conn = null;
let onEnded = null;
let expiryTimer = null;
let wired = false;
let siteTitle = '';
let localCounter = 0;
const tabId = Math.random().toString(36).slice(2, 8);

function newLocalId() {
  localCounter += 1;
  return `c-${tabId}-${Date.now().toString(36)}-${localCounter}`;
}

const actions = {
  command(cmd) {
    return conn ? conn.send(cmd) : false;
  },
  openStream,
  joinRoom(slug) {
    if (state.joined.has(slug)) {
      openStream(roomStream(slug), { fromList: true });
      return;
    }
    if (roomState(slug) === 'closed') {
      toast(t('rooms.closed_hint'), 'error');
      return;
    }
    if (actions.command({ type: 'join', room: slug, ref: `join:${slug}` })) state.pendingSwitch = slug;
    else toast(t('error.offline'), 'error');
  },
  leaveRoom(slug) {
    if (!actions.command({ type: 'leave', room: slug, ref: `leave:${slug}` })) toast(t('error.offline'), 'error');
  },
  openDm(personId) {
    if (state.me && personId === state.me.id) return;
    const existing = convWith(personId);
    if (existing) {
      openStream(existing.stream, { fromList: true });
      return;
    }
    if (actions.command({ type: 'dm', person: personId, ref: `dm:${personId}` })) state.pendingDm = personId;
    else toast(t('error.offline'), 'error');
  },
  async confirmBlock(personId, name) {
    const ok = await confirmDialog({
      title: t('block.title', { name }),
      text: t('block.text', { name }),
      ok: t('block.ok'),
    });
    if (ok && !actions.command({ type: 'block', person: personId, ref: `block:${personId}` })) {
      toast(t('error.offline'), 'error');
    }
  },
  openPerson,
  send(stream, text) {
    const localId = newLocalId();
    const pending = { localId, stream, text, status: 'sending', error: null, ackedId: null, createdAt: Date.now() };
    if (!actions.command({ type: 'send', stream, text, local_id: localId, ref: localId })) return false;
    state.pending.set(localId, pending);
    renderPending();
    scrollToBottom();
    return true;
  },
  retry(localId) {
    const old = state.pending.get(localId);
    if (!old) return;
    state.pending.delete(localId);
    const fresh = newLocalId();
    const pending = { ...old, localId: fresh, status: 'sending', error: null };
    state.pending.set(fresh, pending);
    if (!actions.command({ type: 'send', stream: pending.stream, text: pending.text, local_id: fresh, ref: fresh })) {
      pending.status = 'failed';
      pending.error = t('error.offline');
    }
    renderPending();
  },
  discard(localId) {
    state.pending.delete(localId);
    renderPending();
  },
  loadMore() {
    const st = streamState(state.current);
    if (!st || st.historyPending || !st.items.length) return;
    if (actions.command({ type: 'history', stream: state.current, before: st.items[0].seq, limit: 50, ref: `history:${state.current}` })) {
      st.historyPending = true;
      updateComposer();
    }
  },
  typing(stream) {
    actions.command({ type: 'typing', stream, ref: 'typing' });
  },
  renderWelcome: renderWelcomeActions,
  report(spec) {
    if (state.ended) {
      toast(t('composer.ended'), 'error');
      return;
    }
    openReport(spec);
  },
  showDecision(id) {
    if (id) openDecision(id);
  },
  muteChanged() {
    updateComposer();
  },
  toast,
  returnToEntry() {
    endSession(null);
  },
  /** A message refused by the word lists: back into the composer, to be rephrased. */
  rephrase(localId) {
    const p = state.pending.get(localId);
    if (!p) return;
    const input = byId('composer-input');
    if (p.stream !== state.current) return;
    if (!input.value.trim()) input.value = p.text;
    state.pending.delete(localId);
    renderPending();
    updateComposer();
    input.focus();
  },
};

/** Start the chat for a session ({me, lang}). `ended(message)` is called when it ends. */
export function startChat(session, { ended, focus = false }) {
  onEnded = ended;
  resetState();
  state.me = session.me;
  rememberProfile(session.me);
  wire();
  byId('chat-screen').hidden = false;
  byId('skip-link').setAttribute('href', '#chat-main');
  hideBanner();
  clearToasts();
  renderOnline();
  try {
    const saved = sessionStorage.getItem(VIEW_KEY);
    if (saved) state.current = saved; // validated at welcome
  } catch { /* ignore */ }
  selectTab(state.current ? 'chat' : 'rooms');
  renderConversation();
  renderConvs();
  renderPeople();
  loadAreas();
  // Coming from the entry form: put the keyboard focus in the chat, not on a vanished button.
  if (focus) {
    const tab = document.querySelector('#tabs [aria-selected="true"]');
    if (isPhone() && tab) tab.focus();
    else byId('chat-main').focus({ preventScroll: true });
  }
  conn = new Connection({
    hello: () => ({ type: 'hello', v: 1, streams: cursors() }),
    onEvent: handleEvent,
    onState: connState,
    onClose: connClosed,
  });
  conn.start();
  clearInterval(expiryTimer);
  expiryTimer = setInterval(expire, EXPIRY_CHECK_MS);
}

function wire() {
  if (wired) return;
  wired = true;
  siteTitle = document.title;
  rememberPanelLabels();
  initTabs();
  initRooms(actions);
  initConversation(actions);
  initPeople(actions);
  initDialogs(actions);
  initReport(actions);
  initDecisions(actions);
  onTabChange(() => markRead());
  document.addEventListener('visibilitychange', () => {
    if (document.visibilityState === 'visible') markRead();
  });
  byId('quit-button').addEventListener('click', quit);
  byId('banner-action').addEventListener('click', () => {
    hideBanner();
    if (conn) conn.reconnectNow();
  });
  byId('banner-decision').addEventListener('click', () => {
    const id = state.ended ? lastPersonalDecision(state.ended.code) : null;
    if (id) openDecision(id);
  });
  byId('banner-return').addEventListener('click', () => endSession(null));
  onLangChange((lang) => {
    if (byId('chat-screen').hidden) return;
    actions.command({ type: 'prefs', lang, ref: 'prefs-lang' });
    renderAll();
    refreshRoomNames(lang);
    connState(conn ? conn.state : 'offline');
    if (state.ended) showEndedBanner();
  });
}

async function loadAreas() {
  if (state.areas) return;
  const res = await api.areas();
  if (res.ok && res.data) {
    state.areas = res.data;
    renderFilterOptions();
  }
}

/** Room names and descriptions in the language just chosen (the welcome had the old one). */
async function refreshRoomNames(lang) {
  const res = await api.site(lang);
  if (!res.ok || !res.data || !Array.isArray(res.data.rooms) || lang !== getLang()) return;
  const bySlug = new Map(res.data.rooms.map((r) => [r.slug, r]));
  for (const room of state.rooms) {
    const fresh = bySlug.get(room.slug);
    if (fresh) {
      room.name = fresh.name;
      room.description = fresh.description;
    }
  }
  renderRooms();
  renderHeader();
  renderFilterOptions();
  if (state.people.scope === 'room') renderPeople();
}

function renderOnline() {
  const el = byId('online-count');
  el.hidden = state.online === null;
  el.textContent = state.online === null ? '' : t('header.online', { n: state.online });
}

function renderAll() {
  renderOnline();
  renderRooms();
  renderConvs();
  renderConversation();
  renderFilterOptions();
  renderPeople();
  renderSettings();
  updateBadges();
}

// --- connection -----------------------------------------------------------------------------

function connState(s) {
  const el = byId('conn-state');
  let shown = s === 'stopped' ? 'offline' : s;
  if (state.ended) shown = 'ended';
  el.dataset.state = shown;
  byId('conn-text').textContent = t(`conn.${shown}`);
  setConnected(s === 'connected' && !state.ended);
}

async function connClosed({ welcomed, bye }) {
  reportInterrupted();
  if (bye || welcomed || !conn) return;
  // Closed before a welcome, without a word: maybe the session is gone (the upgrade was refused).
  const res = await api.session();
  if (res.status === 401) {
    const err = errorsOf(res, t('session.ended'))[0];
    endSession(err.message || t('session.ended'));
  }
}

function handleEvent(ev) {
  switch (ev.type) {
    case 'welcome': return onWelcome(ev);
    case 'sync': return onSync(ev);
    case 'msg': return onMsg(ev);
    case 'ack': return onAck(ev);
    case 'joined': return onJoined(ev);
    case 'left': return onLeft(ev);
    case 'counts': return onCounts(ev);
    case 'people': return onPeople(ev);
    case 'members': return onDelta(ev, 'room');
    case 'presence': return onDelta(ev, 'site');
    case 'conv': return onConv(ev.conv);
    case 'typing': return onTyping(ev);
    case 'history': return onHistory(ev);
    case 'blocks': return onBlocks(ev.people || []);
    case 'prefs': return onPrefs(ev);
    case 'error': return onError(ev);
    case 'bye': return onBye(ev);
    case 'reported': return onReported(ev);
    case 'held': return onHeld(ev);
    case 'decision': return onDecisionEvent(ev);
    case 'removed': return onRemoved(ev);
    case 'room_state': return onRoomState(ev);
    case 'case_outcome': return onCaseOutcome(ev);
    default: return undefined;
  }
}

function onWelcome(ev) {
  state.me = ev.me;
  rememberProfile(ev.me);
  if (ev.prefs) state.prefs = { pm_policy: ev.prefs.pm_policy, lang: ev.prefs.lang };
  state.rooms = ev.rooms || [];
  for (const room of state.rooms) room.stateReason = room.state_reason || '';
  state.joined = new Set(ev.joined || []);
  if (ev.limits) state.limits = { ...state.limits, ...ev.limits };
  if (Number.isFinite(ev.now)) state.clockOffset = ev.now - Date.now();
  state.blocked = new Map((ev.blocked || []).map((p) => [p.id, p.name]));
  state.convs = new Map();
  for (const conv of ev.conversations || []) {
    state.convs.set(conv.stream, { ...conv, countedSeq: conv.last_seq || 0 });
    rememberProfile(conv.other);
  }
  // Forget streams that are no longer ours (left in another tab, conversation gone).
  for (const stream of Array.from(state.streams.keys())) {
    if (!belongs(stream)) state.streams.delete(stream);
  }
  for (const [id, p] of Array.from(state.pending)) if (!belongs(p.stream)) state.pending.delete(id);
  if (state.current && !belongs(state.current)) state.current = null;
  if (state.lastRoom && !belongs(state.lastRoom)) state.lastRoom = null;
  if (!state.current) {
    const first = (ev.joined || [])[0];
    if (first) state.current = roomStream(first);
  }
  if (state.current && isRoom(state.current)) state.lastRoom = state.current;
  if (!state.lastRoom) {
    const first = (ev.joined || [])[0];
    if (first) state.lastRoom = roomStream(first);
  }
  saveView();
  if (state.prefs.lang !== getLang()) {
    actions.command({ type: 'prefs', lang: getLang(), ref: 'prefs-lang' });
    refreshRoomNames(getLang());
  }
  hideBanner();
  onWelcomeDecisions(ev.decisions || []);
  renderRooms();
  renderConvs();
  renderConversation();
  renderFilterOptions();
  renderSettings();
  updateBadges();
  queryPeople();
  // Re-send what was not acknowledged, with the same local_id (the server stores it once).
  for (const p of state.pending.values()) {
    if (p.status === 'sending') conn.send({ type: 'send', stream: p.stream, text: p.text, local_id: p.localId, ref: p.localId });
  }
}

function belongs(stream) {
  if (isRoom(stream)) return state.joined.has(slugOf(stream));
  if (isDm(stream)) return state.convs.has(stream);
  return false;
}

function onSync(ev) {
  const st = streamState(ev.stream, true);
  const items = (ev.items || []).slice().sort((a, b) => a.seq - b.seq);
  if (!ev.recovered) {
    st.items = items;
    st.more = true;
    st.historyPending = false;
  } else {
    for (const m of items) if (m.seq > st.lastSeq) st.items.push(m);
  }
  st.epoch = ev.epoch;
  const lastItem = st.items.length ? st.items[st.items.length - 1].seq : 0;
  st.lastSeq = Math.max(Number.isInteger(ev.last_seq) ? ev.last_seq : 0, lastItem);
  settlePending(ev.stream);
  const conv = state.convs.get(ev.stream);
  if (conv && st.items.length) {
    conv.last_ts = Math.max(conv.last_ts || 0, st.items[st.items.length - 1].ts);
    conv.last_seq = Math.max(conv.last_seq || 0, st.lastSeq);
    if (countIncoming(conv, items)) {
      renderConvs();
      updateBadges();
    }
  }
  if (state.pendingDm && conv && conv.other.id === state.pendingDm) {
    state.pendingDm = null;
    openStream(ev.stream, { fromList: true });
    return;
  }
  if (ev.stream === state.current) {
    renderConversation();
    markRead();
  }
}

/** Drop pending sends whose message is now in the stream (a held one: released as sent). */
function settlePending(stream) {
  const st = streamState(stream);
  if (!st) return false;
  let changed = false;
  for (const [id, p] of Array.from(state.pending)) {
    if (p.stream !== stream) continue;
    if ((p.ackedId && st.items.some((m) => m.id === p.ackedId))
      || (p.status === 'held' && st.items.some((m) => isRelease(p, m)))) {
      state.pending.delete(id);
      changed = true;
    }
  }
  return changed;
}

/** Is `msg` the release of the held pending send `p` (my message, same text, after the hold)? */
function isRelease(p, msg) {
  return p.status === 'held' && msg.kind === 'text' && state.me && msg.author === state.me.id
    && msg.stream === p.stream && msg.text === (p.heldText || p.text) && msg.ts >= (p.heldAt || 0) - 60000;
}

function onMsg(msg) {
  let st = streamState(msg.stream);
  if (!st) {
    if (isRoom(msg.stream) && !state.joined.has(slugOf(msg.stream))) return;
    if (msg.seq !== 1) {
      conn.restart(); // we do not know this stream's past: resume it properly
      return;
    }
    st = streamState(msg.stream, true);
  }
  if (msg.seq <= st.lastSeq) return; // already shown
  if (msg.seq !== st.lastSeq + 1) {
    conn.restart(); // a gap: reconnect, the hello resumes from our cursors
    return;
  }
  st.items.push(msg);
  st.lastSeq = msg.seq;
  let pendingChanged = false;
  for (const [id, p] of state.pending) {
    if (p.ackedId === msg.id) {
      state.pending.delete(id);
      pendingChanged = true;
    }
  }
  if (!pendingChanged) {
    // A held message released by a moderator: the first held copy with the same text goes.
    for (const [id, p] of state.pending) {
      if (isRelease(p, msg)) {
        state.pending.delete(id);
        pendingChanged = true;
        break;
      }
    }
  }
  const own = state.me && msg.author === state.me.id;
  const typing = state.typing.get(msg.stream);
  if (typing && typing.person === msg.author) {
    clearTimeout(typing.timer);
    state.typing.delete(msg.stream);
    if (msg.stream === state.current) renderTyping();
  }
  const conv = state.convs.get(msg.stream);
  if (conv) {
    conv.last_ts = msg.ts;
    conv.last_seq = msg.seq;
  }
  if (msg.stream === state.current) {
    if (pendingChanged) renderPending();
    appendMessage(msg);
    if (conv) {
      countIncoming(conv, [msg]);
      markRead();
      renderConvs();
      updateBadges();
    }
  } else if (conv) {
    countIncoming(conv, [msg]);
    renderConvs();
    updateBadges();
  } else if (isRoom(msg.stream) && msg.kind === 'text' && !own && !state.blocked.has(msg.author)) {
    const slug = slugOf(msg.stream);
    state.roomUnread.set(slug, (state.roomUnread.get(slug) || 0) + 1);
    updateRooms();
  }
}

/**
 * Count private messages from the other person that arrived after what the server's unread
 * count already covers (conv.countedSeq), unless the conversation is in front of the person.
 */
function countIncoming(conv, items) {
  let counted = false;
  const shown = conv.stream === state.current && displayed();
  for (const m of items) {
    if (m.seq <= (conv.countedSeq || 0)) continue;
    conv.countedSeq = m.seq;
    if (shown || m.kind !== 'text' || (state.me && m.author === state.me.id)) continue;
    conv.unread = (conv.unread || 0) + 1;
    counted = true;
  }
  return counted;
}

function onAck(ev) {
  const p = state.pending.get(ev.local_id);
  if (!p) return;
  const st = streamState(ev.stream);
  if (st && st.items.some((m) => m.id === ev.id)) state.pending.delete(ev.local_id);
  else {
    p.status = 'acked';
    p.ackedId = ev.id;
  }
  if (p.stream === state.current) renderPending();
}

function onJoined(ev) {
  state.joined.add(ev.room);
  if (!state.lastRoom) state.lastRoom = roomStream(ev.room);
  if (state.pendingSwitch === ev.room) {
    state.pendingSwitch = null;
    openStream(roomStream(ev.room), { fromList: true });
  } else {
    updateRooms();
    renderFilterOptions();
    if (!state.current) renderConversation();
  }
}

function onLeft(ev) {
  const stream = roomStream(ev.room);
  state.joined.delete(ev.room);
  state.streams.delete(stream);
  state.roomUnread.delete(ev.room);
  for (const [id, p] of Array.from(state.pending)) if (p.stream === stream) state.pending.delete(id);
  if (state.lastRoom === stream) {
    const other = Array.from(state.joined)[0];
    state.lastRoom = other ? roomStream(other) : null;
  }
  const q = state.people.queried;
  const requery = Boolean(q && q.scope === 'room' && q.room === ev.room);
  if (state.current === stream) {
    state.current = state.lastRoom;
    saveView();
    renderConversation();
  }
  updateRooms();
  renderFilterOptions();
  if (requery) queryPeople();
}

function onCounts(ev) {
  const counts = ev.rooms || {};
  for (const room of state.rooms) {
    if (Object.prototype.hasOwnProperty.call(counts, room.slug)) room.count = counts[room.slug];
  }
  if (Number.isInteger(ev.online)) {
    state.online = ev.online;
    renderOnline();
  }
  updateRooms();
  if (isRoom(state.current)) renderHeader();
}

function onConv(conv) {
  if (!conv || !conv.stream) return;
  const old = state.convs.get(conv.stream);
  const merged = { ...(old || {}), ...conv };
  if (old && (old.countedSeq || 0) > (conv.last_seq || 0)) {
    // We have counted further than this snapshot: keep our figures.
    merged.unread = old.unread;
    merged.last_seq = old.last_seq;
    merged.last_ts = Math.max(old.last_ts || 0, conv.last_ts || 0);
    merged.countedSeq = old.countedSeq;
  } else {
    merged.countedSeq = conv.last_seq || 0;
  }
  state.convs.set(conv.stream, merged);
  rememberProfile(conv.other);
  if (state.pendingDm && conv.other && conv.other.id === state.pendingDm) {
    state.pendingDm = null;
    openStream(conv.stream, { fromList: true });
    return;
  }
  renderConvs();
  updateBadges();
  if (state.current === conv.stream) {
    renderHeader();
    updateComposer();
  }
}

function onTyping(ev) {
  if (state.me && ev.person === state.me.id) return;
  const conv = state.convs.get(ev.stream);
  const profile = state.profiles.get(ev.person);
  const name = conv && conv.other.id === ev.person ? conv.other.name : profile ? profile.name : null;
  if (!name) return;
  const old = state.typing.get(ev.stream);
  if (old) clearTimeout(old.timer);
  const entry = { person: ev.person, name, timer: null };
  entry.timer = setTimeout(() => {
    if (state.typing.get(ev.stream) === entry) {
      state.typing.delete(ev.stream);
      if (state.current === ev.stream) renderTyping();
    }
  }, TYPING_SHOW_MS);
  state.typing.set(ev.stream, entry);
  if (state.current === ev.stream) renderTyping();
}

function onHistory(ev) {
  const st = streamState(ev.stream);
  if (!st) return;
  st.historyPending = false;
  st.more = Boolean(ev.more);
  const first = st.items.length ? st.items[0].seq : Infinity;
  const older = (ev.items || []).filter((m) => m.seq < first).sort((a, b) => a.seq - b.seq);
  st.items = older.concat(st.items);
  if (ev.stream === state.current) prependedHistory();
}

function onBlocks(people) {
  state.blocked = new Map(people.map((p) => [p.id, p.name]));
  renderSettings();
  applyBlocks();
  queryPeople(); // someone unblocked may be listed again; the total changes too
  renderConvs();
  updateBadges();
  renderConversation();
}

function onPrefs(ev) {
  if (ev.pm_policy) state.prefs.pm_policy = ev.pm_policy;
  if (ev.lang) state.prefs.lang = ev.lang;
  renderSettings();
  prefsSaved();
}

function onError(ev) {
  const ref = ev.ref || '';
  const message = ev.message || t('error.generic');
  const pending = ref ? state.pending.get(ref) : null;
  if (ev.code === 'muted') onMutedError(ev.details);
  if (pending) {
    pending.status = 'failed';
    pending.error = message;
    pending.code = ev.code || '';
    if ((ev.code === 'room_frozen' || ev.code === 'room_closed') && isRoom(pending.stream)) {
      // We had missed the change (a reconnect in between): the room says so now.
      const room = roomBySlug(slugOf(pending.stream));
      const now = ev.code === 'room_frozen' ? 'frozen' : 'closed';
      if (room && room.state !== now) {
        room.state = now;
        room.stateReason = '';
        updateRooms();
      }
    }
    if (pending.stream === state.current) {
      renderPending();
      updateComposer();
    }
    return;
  }
  if (ref.startsWith('report:')) {
    onReportError(ev);
    return;
  }
  if (ev.code === 'muted') return; // the banner over the composer says it
  if (ref === 'typing' || ref === 'read') return; // background notices: nothing to tell the person
  if (ref.startsWith('join:')) state.pendingSwitch = null;
  if (ref.startsWith('dm:')) state.pendingDm = null;
  if (ref.startsWith('history:')) {
    const st = streamState(ref.slice('history:'.length));
    if (st) {
      st.historyPending = false;
      st.more = false;
      updateComposer();
    }
  }
  if (ref === 'people') byId('people-list').removeAttribute('aria-busy');
  toast(message, 'error');
}

function onBye(ev) {
  switch (ev.code) {
    case 'session_replaced':
      showBanner(t('bye.replaced'), { useHere: true });
      break;
    case 'kicked':
    case 'excluded':
      // A moderator ended the session: keep the decision in view, never a silent return.
      state.ended = { code: ev.code };
      if (byId('report-dialog').open) byId('report-dialog').close('cancel');
      for (const p of state.pending.values()) {
        if (p.status === 'sending' || p.status === 'acked') {
          p.status = 'failed';
          p.code = ev.code;
          p.error = ev.message || t(`ended.${ev.code}`);
        }
      }
      renderPending();
      showEndedBanner();
      connState(conn ? conn.state : 'offline');
      updateComposer();
      sessionEnded(ev.code);
      break;
    case 'quit':
    case 'not_authenticated':
      endSession(ev.message || t('session.ended'));
      break;
    default:
      if (ev.message) toast(ev.message, 'info', { timeout: 5000 });
  }
}

// --- moderation -----------------------------------------------------------------------------

function onHeld(ev) {
  const p = state.pending.get(ev.local_id);
  if (!p) return;
  p.status = 'held';
  p.caseCode = ev.case;
  p.heldText = typeof ev.message === 'string' ? ev.message : p.text;
  p.heldAt = serverNow();
  p.error = null;
  if (p.stream === state.current) renderPending();
}

function onDecisionEvent(ev) {
  const view = ev.decision;
  if (!view) return;
  if (view.action === 'refuse') {
    // A held message was refused: its bubble says so (the statement opens too).
    for (const p of state.pending.values()) {
      if (p.status === 'held' && p.caseCode === view.case) {
        p.status = 'refused';
        p.decision = view.id;
        if (p.stream === state.current) renderPending();
      }
    }
  }
  onDecision(view, ev.ban_token || '');
  if (state.ended) showEndedBanner();
}

function onRemoved(ev) {
  const st = streamState(ev.stream);
  if (!st) return;
  const index = st.items.findIndex((m) => m.id === ev.id || (m.seq === ev.seq && ev.seq));
  if (index < 0) return;
  const old = st.items[index];
  // Keep the item (and its seq: the stream stays continuous), without its text.
  const gone = { ...old, kind: 'removed', text: '' };
  st.items[index] = gone;
  if (ev.stream === state.current) markRemoved(gone);
  const slug = slugOf(ev.stream);
  if (slug && ev.stream !== state.current && old.kind === 'text' && state.roomUnread.get(slug)) {
    state.roomUnread.set(slug, Math.max(0, state.roomUnread.get(slug) - 1));
    updateRooms();
  }
}

function onRoomState(ev) {
  const room = roomBySlug(ev.room);
  if (!room) return;
  const before = room.state || 'open';
  room.state = ev.state || 'open';
  room.stateReason = ev.reason || '';
  updateRooms();
  renderWelcomeActions(byId('welcome-actions'));
  const stream = roomStream(ev.room);
  if (state.current === stream) {
    renderHeader();
    updateComposer();
  } else if (state.joined.has(ev.room) && before !== room.state) {
    const key = `room.toast_${room.state}`;
    toast(t(key, { room: room.name, reason: room.stateReason || '—' }), 'info', { timeout: 10000 });
  }
}

function onCaseOutcome(ev) {
  const key = ev.outcome === 'actioned' || ev.outcome === 'dismissed' ? `case.outcome_${ev.outcome}` : 'case.outcome_other';
  toast(t(key, { case: ev.case }), 'info', { timeout: 12000, link: { href: caseHref(ev.case), text: t('case.follow') } });
}

function showEndedBanner() {
  if (!state.ended) return;
  const code = state.ended.code;
  showBanner(t(`ended.${code}`), { decision: Boolean(lastPersonalDecision(code)), ret: code === 'kicked' });
}

// --- views ----------------------------------------------------------------------------------

function openStream(stream, { fromList = false } = {}) {
  const changed = state.current !== stream;
  state.current = stream;
  let requery = false;
  if (isRoom(stream)) {
    const slug = slugOf(stream);
    state.roomUnread.delete(slug);
    state.lastRoom = stream;
    // The people list follows the room shown, unless the person chose "whole site".
    const people = state.people;
    const q = people.queried;
    if (people.userScope !== 'site' && (!q || q.scope !== 'room' || q.room !== slug)) {
      people.scope = 'room';
      requery = true;
    }
  }
  saveView();
  if (changed) renderConversation();
  updateRooms();
  renderConvs();
  if (fromList && isPhone()) selectTab('chat');
  markRead();
  updateBadges();
  if (requery) {
    renderFilterOptions();
    queryPeople();
  }
}

function saveView() {
  try {
    if (state.current) sessionStorage.setItem(VIEW_KEY, state.current);
    else sessionStorage.removeItem(VIEW_KEY);
  } catch { /* ignore */ }
}

/** Is the shown conversation actually in front of the person? */
function displayed() {
  return document.visibilityState === 'visible' && panelVisible('chat');
}

/** Tell the server the open private conversation has been read. */
function markRead() {
  const stream = state.current;
  if (!isDm(stream) || !displayed()) return;
  const conv = state.convs.get(stream);
  const st = streamState(stream);
  const seq = st ? st.lastSeq : conv ? conv.last_seq : 0;
  if (conv && conv.unread) {
    conv.unread = 0;
    renderConvs();
    updateBadges();
  }
  if (!st || seq <= 0 || seq <= (st.readSeq || 0)) return;
  if (actions.command({ type: 'read', stream, seq, ref: 'read' })) st.readSeq = seq;
}

function updateBadges() {
  const n = totalUnread();
  const badge = byId('tab-dms-badge');
  badge.hidden = n === 0;
  badge.textContent = n > 99 ? '99+' : String(n);
  badge.setAttribute('aria-label', t('dms.unread_total', { n }));
  document.title = n ? `(${n}) ${siteTitle}` : siteTitle;
}

function expire() {
  const cutoff = serverNow() - state.limits.lifetime_ms;
  for (const [stream, st] of state.streams) {
    const gone = new Set();
    st.items = st.items.filter((m) => {
      if (m.ts < cutoff) {
        gone.add(m.id);
        return false;
      }
      return true;
    });
    if (gone.size && stream === state.current) removeItems(gone);
  }
}

function showBanner(text, { useHere = false, decision = false, ret = false } = {}) {
  byId('banner-text').textContent = text;
  byId('banner-action').hidden = !useHere;
  byId('banner-decision').hidden = !decision;
  byId('banner-return').hidden = !ret;
  byId('banner').hidden = false;
}

function hideBanner() {
  byId('banner').hidden = true;
  byId('banner-text').textContent = '';
}

async function quit() {
  const button = byId('quit-button');
  button.disabled = true;
  const res = await api.quit();
  button.disabled = false;
  if (res.ok || res.status === 401) endSession(null);
  else toast(errorsOf(res, t('error.network'))[0].message, 'error');
}

/** The session is over: back to the entry screen, with a message when there is one. */
function endSession(message) {
  if (conn) conn.stop();
  conn = null;
  clearInterval(expiryTimer);
  closeAllDialogs();
  resetDecisions();
  resetState();
  try { sessionStorage.removeItem(VIEW_KEY); } catch { /* ignore */ }
  byId('chat-screen').hidden = true;
  clear(byId('log'));
  clear(byId('log-pending'));
  clear(byId('people-list'));
  clear(byId('conv-list'));
  document.title = siteTitle;
  if (onEnded) onEnded(message);
}

