// Left column: rooms with live counts, the suggested regional room, private conversations.

import { ICON_LOCK, byId, clear, h, icon } from '../dom.js';
import { t, tn } from '../i18n.js';
import { roomState, roomStream, state, suggestedRoom } from '../state.js';
import { GENDER_SYMBOL } from './format.js';

let actions = null;
const roomRefs = new Map(); // slug -> {button, count, joined, unread}

export function initRooms(a) {
  actions = a;
}

function roomClicked(slug) {
  if (state.joined.has(slug)) actions.openStream(roomStream(slug), { fromList: true });
  else actions.joinRoom(slug); // a closed room: says why it cannot be joined
}

/** Build the room lists from scratch (after welcome, or a language change). */
export function renderRooms() {
  const topics = byId('room-list');
  const regional = byId('room-list-regional');
  clear(topics);
  clear(regional);
  roomRefs.clear();
  for (const room of state.rooms) {
    const count = h('span', { class: 'room-count' });
    const joined = h('span', { class: 'room-joined' });
    const unread = h('span', { class: 'badge room-unread', hidden: true });
    const lock = h('span', { class: 'room-lock', hidden: true }, icon(...ICON_LOCK));
    const stateTag = h('span', { class: 'tag tag-state', hidden: true });
    const name = h('span', { class: 'room-name' }, lock, room.name);
    if (room.adult) name.appendChild(h('span', { class: 'tag tag-adult', text: t('rooms.adult') }));
    name.appendChild(stateTag);
    const button = h('button', {
      type: 'button',
      class: 'room-btn',
      dataset: { testid: `room-${room.slug}`, slug: room.slug },
      title: room.description || null,
      onclick: () => roomClicked(room.slug),
    }, name, h('span', { class: 'room-meta' }, unread, joined, count));
    roomRefs.set(room.slug, { button, count, joined, unread, lock, stateTag });
    const li = h('li', null, button);
    ((room.regions && room.regions.length) ? regional : topics).appendChild(li);
  }
  byId('room-regions').hidden = !regional.children.length;
  updateRooms();
}

/** Update counts, joined marks and the current room in place (keeps keyboard focus). */
export function updateRooms() {
  for (const room of state.rooms) {
    const refs = roomRefs.get(room.slug);
    if (!refs) continue;
    const joined = state.joined.has(room.slug);
    const current = state.current === roomStream(room.slug);
    refs.button.classList.toggle('is-joined', joined);
    refs.button.classList.toggle('is-current', current);
    if (current) refs.button.setAttribute('aria-current', 'true');
    else refs.button.removeAttribute('aria-current');
    const n = Number.isInteger(room.count) ? room.count : 0;
    refs.count.textContent = String(n);
    refs.joined.textContent = '';
    if (joined) {
      refs.joined.appendChild(h('span', { class: 'joined-mark', text: '●' }));
      refs.joined.title = t('rooms.joined');
    } else {
      refs.joined.removeAttribute('title');
    }
    const mode = roomState(room.slug);
    refs.lock.hidden = mode !== 'closed';
    refs.stateTag.hidden = mode === 'open';
    refs.stateTag.textContent = mode === 'open' ? '' : t(`rooms.${mode}_tag`);
    refs.button.classList.toggle('is-closed', mode === 'closed');
    // A closed room cannot be joined (one already joined can still be read).
    const blocked = mode === 'closed' && !joined;
    if (blocked) refs.button.setAttribute('aria-disabled', 'true');
    else refs.button.removeAttribute('aria-disabled');
    if (mode !== 'open') refs.button.title = t(mode === 'closed' ? 'rooms.closed_hint' : 'rooms.frozen_hint');
    else if (room.description) refs.button.title = room.description;
    else refs.button.removeAttribute('title');
    const unread = state.roomUnread.get(room.slug) || 0;
    const showUnread = Boolean(unread) && !current;
    refs.unread.hidden = !showUnread;
    refs.unread.textContent = unread > 99 ? '99+' : String(unread);
    // One spoken name: "Général, vous y êtes, 12 personnes, 3 nouveaux messages".
    const label = [room.name];
    if (room.adult) label.push(t('rooms.adult'));
    if (mode !== 'open') label.push(t(mode === 'closed' ? 'rooms.closed_hint' : 'rooms.frozen_hint'));
    if (joined) label.push(t('rooms.joined'));
    label.push(tn('rooms.count', n));
    if (showUnread) label.push(tn('rooms.unread', unread));
    refs.button.setAttribute('aria-label', label.join(', '));
  }
  renderSuggestion();
}

function renderSuggestion() {
  const box = byId('room-suggest');
  const room = suggestedRoom();
  clear(box);
  if (!room || state.joined.has(room.slug) || roomState(room.slug) === 'closed') {
    box.hidden = true;
    return;
  }
  box.hidden = false;
  box.appendChild(h('p', { class: 'suggest-text', text: t('rooms.suggest', { room: room.name }) }));
  box.appendChild(h('button', {
    type: 'button',
    class: 'btn btn-small btn-primary',
    dataset: { testid: 'room-suggest-join' },
    onclick: () => actions.joinRoom(room.slug),
  }, t('rooms.join_named', { room: room.name })));
}

/** Welcome state of the conversation view: suggested rooms to join. */
export function renderWelcomeActions(box) {
  clear(box);
  const picks = [];
  const general = state.rooms.find((r) => r.slug === 'general') || state.rooms[0];
  if (general) picks.push(general);
  const regional = suggestedRoom();
  if (regional && regional !== general) picks.push(regional);
  for (const room of picks) {
    const joined = state.joined.has(room.slug);
    if (!joined && roomState(room.slug) === 'closed') continue;
    box.appendChild(h('button', {
      type: 'button',
      class: 'btn btn-primary',
      dataset: { testid: `welcome-join-${room.slug}` },
      onclick: () => roomClicked(room.slug),
    }, joined ? t('rooms.open_named', { room: room.name }) : t('rooms.join_named', { room: room.name })));
  }
}

/** Private conversations, most recent first. */
export function renderConvs() {
  const list = byId('conv-list');
  const convs = Array.from(state.convs.values())
    .filter((c) => c.other && !state.blocked.has(c.other.id))
    .sort((a, b) => (b.last_ts || 0) - (a.last_ts || 0));
  const focused = document.activeElement && list.contains(document.activeElement)
    ? document.activeElement.dataset.stream : null;
  clear(list);
  byId('conv-empty').hidden = convs.length > 0;
  for (const conv of convs) {
    const current = state.current === conv.stream;
    const other = state.profiles.get(conv.other.id) || conv.other;
    const cls = ['conv-btn'];
    if (current) cls.push('is-current');
    if (conv.gone) cls.push('is-gone');
    if (conv.unread && !current) cls.push('has-unread');
    const meta = [];
    if (other.age) meta.push(String(other.age));
    const spoken = [other.name];
    if (other.age) spoken.push(t('people.age_years', { age: other.age }));
    if (other.gender) spoken.push(t(`gender.${other.gender}`));
    if (conv.gone) spoken.push(t('dms.gone'));
    if (conv.unread && !current) spoken.push(tn('dms.unread', conv.unread));
    const button = h('button', {
      type: 'button',
      class: cls.join(' '),
      dataset: { testid: 'conv-item', stream: conv.stream, person: conv.other.id },
      'aria-current': current ? 'true' : null,
      'aria-label': spoken.join(', '),
      onclick: () => actions.openStream(conv.stream, { fromList: true }),
    },
    h('span', { class: 'conv-name' }, other.name),
    h('span', { class: 'conv-meta' },
      h('span', { 'aria-hidden': 'true', text: `${meta.join(' ')} ${GENDER_SYMBOL[other.gender] || ''}`.trim() }),
      conv.gone ? h('span', { class: 'conv-gone', 'aria-hidden': 'true', text: t('dms.gone') }) : null,
      conv.unread && !current ? h('span', { class: 'badge', dataset: { testid: 'conv-unread' }, 'aria-hidden': 'true', text: conv.unread > 99 ? '99+' : String(conv.unread) }) : null,
      null));
    list.appendChild(h('li', null, button));
    if (focused === conv.stream) button.focus();
  }
}
