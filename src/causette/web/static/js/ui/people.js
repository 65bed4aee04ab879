// Right column: connected people, scope (this room / whole site), filters, live deltas.

import { ICON_FLAG, byId, clear, h, icon } from '../dom.js';
import { t, tn } from '../i18n.js';
import { rememberProfile, roomBySlug, slugOf, state } from '../state.js';
import { genderBadge, nameClass } from './format.js';

let actions = null;
let wired = false;
const rows = new Map(); // person id -> li

const AGE_BANDS = ['18-25', '26-35', '36-50', '51+'];

export function initPeople(a) {
  actions = a;
  if (wired) return;
  wired = true;
  const form = byId('people-filters');
  form.addEventListener('submit', (e) => e.preventDefault());
  form.addEventListener('change', (e) => {
    const f = state.people.filters;
    const target = e.target;
    if (target.name === 'scope') {
      state.people.scope = target.value;
      state.people.userScope = target.value; // the person chose: keep it when rooms change
    }
    else if (target.name === 'gender') f.gender = target.value;
    else if (target.name === 'age_band') f.age_band = target.value;
    else if (target.name === 'region') {
      f.region = target.value;
      // A département outside the chosen region makes no sense: reset it.
      if (f.dep && f.region && depRegion(f.dep) !== f.region) f.dep = '';
      renderFilterOptions();
    } else if (target.name === 'dep') f.dep = target.value;
    else if (target.name === 'near') f.near = target.checked;
    queryPeople();
  });
  renderFilterOptions();
}

function depRegion(code) {
  const deps = state.areas ? state.areas.departements || [] : [];
  const d = deps.find((x) => x.code === code);
  return d ? d.region : '';
}

/** Fill the filter selects (after areas arrive, or a language change). */
export function renderFilterOptions() {
  const f = state.people.filters;
  const gender = byId('filter-gender');
  clear(gender);
  gender.appendChild(h('option', { value: '', text: t('people.gender_all') }));
  for (const g of ['f', 'm', 'x']) gender.appendChild(h('option', { value: g, text: t(`people.gender_${g}`) }));
  gender.value = f.gender;

  const age = byId('filter-age');
  clear(age);
  age.appendChild(h('option', { value: '', text: t('people.age_all') }));
  for (const band of AGE_BANDS) age.appendChild(h('option', { value: band, text: t(`people.band_${band}`) }));
  age.value = f.age_band;

  const regions = state.areas ? [...(state.areas.regions || [])] : [];
  regions.sort((a, b) => a.name.localeCompare(b.name, 'fr'));
  const region = byId('filter-region');
  clear(region);
  region.appendChild(h('option', { value: '', text: t('people.region_all') }));
  for (const r of regions) region.appendChild(h('option', { value: r.code, text: r.name }));
  region.value = f.region;

  const deps = state.areas ? (state.areas.departements || []).filter((d) => !f.region || d.region === f.region) : [];
  const dep = byId('filter-dep');
  clear(dep);
  dep.appendChild(h('option', { value: '', text: t('people.dep_all') }));
  for (const d of deps) dep.appendChild(h('option', { value: d.code, text: `${d.code} – ${d.name}` }));
  dep.value = f.dep;

  renderScope();
  byId('filter-near').checked = f.near;
}

function hasRoom() {
  return Boolean(state.lastRoom && state.joined.has(slugOf(state.lastRoom)));
}

/** The scope actually used: "this room" needs a room. */
function effectiveScope() {
  return state.people.scope === 'room' && hasRoom() ? 'room' : 'site';
}

function renderScope() {
  const scope = effectiveScope();
  byId('scope-room').disabled = !hasRoom();
  byId('scope-room').checked = scope === 'room';
  byId('scope-site').checked = scope === 'site';
}

/** Ask the server for the list with the current scope and filters (and watch it live). */
export function queryPeople() {
  const p = state.people;
  renderScope();
  const scope = effectiveScope();
  p.queried = { scope, room: scope === 'room' ? slugOf(state.lastRoom) : '' };
  const cmd = { type: 'people', scope, watch: true, ref: 'people' };
  if (scope === 'room') cmd.room = p.queried.room;
  const f = p.filters;
  if (f.gender) cmd.gender = f.gender;
  if (f.age_band) cmd.age_band = f.age_band;
  if (f.dep) cmd.dep = f.dep;
  if (f.region) cmd.region = f.region;
  if (f.near) cmd.near = true;
  updateHeading();
  if (actions.command(cmd)) {
    byId('people-list').setAttribute('aria-busy', 'true');
  }
}

function updateHeading() {
  const q = state.people.queried;
  const heading = byId('people-heading');
  if (q && q.scope === 'room' && q.room) {
    const room = roomBySlug(q.room);
    heading.textContent = t('people.title_room', { room: room ? room.name : q.room });
  } else {
    heading.textContent = t('people.title_site');
  }
}

function matches(profile) {
  const f = state.people.filters;
  if (state.blocked.has(profile.id)) return false;
  if (f.gender && profile.gender !== f.gender) return false;
  if (f.dep && profile.dep !== f.dep) return false;
  if (f.region && profile.region !== f.region) return false;
  if (f.age_band) {
    const a = profile.age;
    const [lo, hi] = f.age_band === '51+' ? [51, Infinity] : f.age_band.split('-').map(Number);
    if (!(a >= lo && a <= hi)) return false;
  }
  return true;
}

/** `people` answer: replace the list if it answers the current query. */
export function onPeople(ev) {
  const p = state.people;
  const q = p.queried;
  if (!q || ev.scope !== q.scope) return;
  if (q.scope === 'room' && ev.room !== q.room) return;
  for (const person of ev.items || []) rememberProfile(person);
  p.items = (ev.items || []).filter((x) => !state.blocked.has(x.id));
  p.total = Number.isInteger(ev.total) ? ev.total : p.items.length;
  byId('people-list').removeAttribute('aria-busy');
  renderPeople();
}

/** `members` (room) or `presence` (site) delta. */
export function onDelta(ev, scope) {
  for (const person of ev.add || []) rememberProfile(person);
  const p = state.people;
  const q = p.queried;
  if (!q) return;
  // Additions belong to the list of their scope; a site-wide removal (someone gone, or hidden
  // by a block) takes the person out of whatever list is shown.
  const sameList = q.scope === scope && (scope !== 'room' || ev.room === q.room);
  if (!sameList && scope !== 'site') return;
  const removed = new Set(ev.remove || []);
  const adds = sameList ? (ev.add || []).filter(matches) : [];
  const addIds = new Set(adds.map((x) => x.id));
  const before = p.items.length;
  p.items = p.items.filter((x) => !removed.has(x.id) && !addIds.has(x.id));
  const removedCount = before - p.items.length;
  const list = byId('people-list');
  for (const id of removed) {
    const li = rows.get(id);
    if (li && !addIds.has(id)) {
      if (li.contains(document.activeElement)) byId('people-heading').focus();
      li.remove();
      rows.delete(id);
    }
  }
  for (const person of adds) {
    p.items.push(person);
    const old = rows.get(person.id);
    const li = personRow(person);
    if (old) old.replaceWith(li);
    else list.appendChild(li);
    rows.set(person.id, li);
  }
  p.total = Math.max(p.items.length, p.total - removedCount + adds.length);
  renderCount();
}

/** Drop people I blocked from the list. */
export function applyBlocks() {
  const p = state.people;
  p.items = p.items.filter((x) => !state.blocked.has(x.id));
  renderPeople();
}

export function renderPeople() {
  const list = byId('people-list');
  clear(list);
  rows.clear();
  for (const person of state.people.items) {
    const li = personRow(person);
    rows.set(person.id, li);
    list.appendChild(li);
  }
  renderCount();
  updateHeading();
}

function renderCount() {
  const p = state.people;
  const shown = p.items.length;
  const el = byId('people-count');
  if (!shown) el.textContent = t('people.none');
  else if (p.total > shown) el.textContent = tn('people.count_of', shown, { total: p.total });
  else el.textContent = tn('people.count', shown);
}

function personRow(person) {
  const me = state.me && person.id === state.me.id;
  const li = h('li', {
    class: `person${me ? ' is-me' : ''}`,
    dataset: { testid: 'people-row', personId: person.id, name: person.name },
  });
  const main = h('div', { class: 'person-main' },
    h('span', { class: `person-name ${nameClass(person.id)}` }, person.name,
      me ? h('span', { class: 'you', text: ` ${t('people.you')}` }) : null),
    h('span', { class: 'person-info' },
      h('span', { class: 'person-age', text: t('people.age_years', { age: person.age }) }),
      h('span', { class: 'dot', 'aria-hidden': 'true', text: ' · ' }),
      genderBadge(person.gender),
      h('span', { class: 'dot', 'aria-hidden': 'true', text: ' · ' }),
      h('span', { class: 'person-place', text: person.dep ? `${person.commune} (${person.dep})` : person.commune })));
  li.appendChild(main);
  if (!me) {
    li.appendChild(h('div', { class: 'person-actions' },
      h('button', {
        type: 'button', class: 'btn btn-small btn-primary-ghost', dataset: { testid: 'people-dm' },
        onclick: () => actions.openDm(person.id),
      }, t('people.dm'), h('span', { class: 'sr-only', text: ` ${t('people.to', { name: person.name })}` })),
      h('button', {
        type: 'button', class: 'btn btn-small btn-danger-ghost', dataset: { testid: 'people-block' },
        onclick: () => actions.confirmBlock(person.id, person.name),
      }, t('people.block'), h('span', { class: 'sr-only', text: ` ${person.name}` })),
      h('button', {
        type: 'button', class: 'btn btn-small btn-ghost btn-report btn-report-icon', dataset: { testid: 'report-person' },
        'aria-haspopup': 'dialog', 'aria-label': t('report.person_label', { name: person.name }),
        title: t('report.person_label', { name: person.name }),
        onclick: () => actions.report({ target: 'person', id: person.id, name: person.name }),
      }, icon(...ICON_FLAG))));
  }
  return li;
}
