// What the page knows. Mutated only by the chat controller (ui/chat.js).

export const state = {
  me: null,
  prefs: { pm_policy: 'everyone', lang: 'fr' },
  rooms: [], // RoomInfo, server order
  joined: new Set(), // slugs
  convs: new Map(), // stream -> ConvInfo
  blocked: new Map(), // person id -> name
  limits: { max_chars: 1000, lifetime_ms: 3 * 3600 * 1000, max_rooms: 12, max_frame_bytes: 16384 },
  clockOffset: 0, // server time - local time, from welcome.now
  online: null,
  streams: new Map(), // stream -> {epoch, lastSeq, items: [msg], more, historyPending, readSeq}
  pending: new Map(), // local_id -> {localId, stream, text, status, error, ackedId, createdAt}
  current: null, // stream shown in the conversation view
  lastRoom: null, // last room stream shown (for the people scope "this room")
  roomUnread: new Map(), // slug -> count of new text messages while not shown
  profiles: new Map(), // person id -> profile (from lists, conversations)
  people: { scope: 'room', userScope: null, queried: null, items: [], total: 0, filters: { gender: '', age_band: '', region: '', dep: '', near: false } },
  areas: null, // {departements, regions}
  typing: new Map(), // stream -> {person, timer}
  pendingSwitch: null, // room slug to show once joined
  pendingDm: null, // person id whose conversation to open once it arrives
  mute: null, // {decision, until}: I cannot write until then
  decisions: new Map(), // decision id -> decision view (statements of reasons about me)
  ended: null, // {code: 'kicked'|'excluded'}: a moderator ended the session
};

export function resetState() {
  state.me = null;
  state.rooms = [];
  state.joined = new Set();
  state.convs = new Map();
  state.blocked = new Map();
  state.streams = new Map();
  state.pending = new Map();
  state.current = null;
  state.lastRoom = null;
  state.roomUnread = new Map();
  state.profiles = new Map();
  state.people.items = [];
  state.people.total = 0;
  state.people.queried = null;
  for (const entry of state.typing.values()) clearTimeout(entry.timer);
  state.typing = new Map();
  state.pendingSwitch = null;
  state.pendingDm = null;
  state.online = null;
  state.mute = null;
  state.decisions = new Map();
  state.ended = null;
}

export const isRoom = (stream) => typeof stream === 'string' && stream.startsWith('r:');
export const isDm = (stream) => typeof stream === 'string' && stream.startsWith('d:');
export const roomStream = (slug) => `r:${slug}`;
export const slugOf = (stream) => (isRoom(stream) ? stream.slice(2) : null);

export function serverNow() {
  return Date.now() + state.clockOffset;
}

/** Cursors of every stream shown, for hello: {stream: [epoch, last_seq]}. */
export function cursors() {
  const out = {};
  for (const [stream, st] of state.streams) {
    if (st.epoch !== null && st.epoch !== undefined) out[stream] = [st.epoch, st.lastSeq];
  }
  return out;
}

export function streamState(stream, create = false) {
  let st = state.streams.get(stream);
  if (!st && create) {
    st = { epoch: null, lastSeq: 0, items: [], more: true, historyPending: false, readSeq: 0 };
    state.streams.set(stream, st);
  }
  return st;
}

export function roomBySlug(slug) {
  return state.rooms.find((r) => r.slug === slug) || null;
}

/** The conversation with a person, if any. */
export function convWith(personId) {
  for (const conv of state.convs.values()) if (conv.other && conv.other.id === personId) return conv;
  return null;
}

export function rememberProfile(profile) {
  if (profile && profile.id) state.profiles.set(profile.id, profile);
}

/** Sum of unread private messages. */
export function totalUnread() {
  let n = 0;
  for (const conv of state.convs.values()) if (!state.blocked.has(conv.other.id)) n += conv.unread || 0;
  return n;
}

/** A room's moderation state: 'open', 'frozen' or 'closed'. */
export function roomState(slug) {
  const room = roomBySlug(slug);
  return room && room.state ? room.state : 'open';
}

/** Is a mute in force now? */
export function isMuted() {
  return Boolean(state.mute && state.mute.until > serverNow());
}

/** Is the room message from someone I blocked (hidden from view)? */
export function hiddenByBlock(msg) {
  return state.blocked.has(msg.author);
}

/** The room a person would like: a regional room matching their region. */
export function suggestedRoom() {
  if (!state.me) return null;
  return state.rooms.find((r) => Array.isArray(r.regions) && r.regions.includes(state.me.region)) || null;
}
