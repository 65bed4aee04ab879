// Phone layout (< 760px): the columns fold into tabs (role=tablist/tab/tabpanel, arrow keys).

import { byId } from '../dom.js';

const PHONE = window.matchMedia('(max-width: 759.98px)');
const TABS = [
  { tab: 'tab-rooms', panel: 'panel-rooms', name: 'rooms' },
  { tab: 'tab-chat', panel: 'panel-chat', name: 'chat' },
  { tab: 'tab-people', panel: 'panel-people', name: 'people' },
  { tab: 'tab-dms', panel: 'panel-dms', name: 'dms' },
];

let active = 'chat';
let listeners = [];
let wired = false;

export function isPhone() {
  return PHONE.matches;
}

export function activeTab() {
  return active;
}

/** Is a panel visible to the person right now (always on desktop; on phone, when its tab is on)? */
export function panelVisible(name) {
  return !PHONE.matches || active === name;
}

export function onTabChange(fn) {
  listeners.push(fn);
}

export function initTabs() {
  if (wired) return;
  wired = true;
  for (const spec of TABS) {
    const tab = byId(spec.tab);
    tab.addEventListener('click', () => selectTab(spec.name, { focus: false }));
    tab.addEventListener('keydown', onKey);
  }
  PHONE.addEventListener('change', applyRoles);
  applyRoles();
  selectTab(active, { focus: false });
}

function onKey(e) {
  const index = TABS.findIndex((s) => s.tab === e.currentTarget.id);
  let next = null;
  if (e.key === 'ArrowRight') next = (index + 1) % TABS.length;
  else if (e.key === 'ArrowLeft') next = (index - 1 + TABS.length) % TABS.length;
  else if (e.key === 'Home') next = 0;
  else if (e.key === 'End') next = TABS.length - 1;
  if (next === null) return;
  e.preventDefault();
  selectTab(TABS[next].name, { focus: true });
}

/** Show a tab (on phone). On desktop this only records which section was asked for. */
export function selectTab(name, { focus = false } = {}) {
  const changed = name !== active;
  active = name;
  for (const spec of TABS) {
    const on = spec.name === name;
    const tab = byId(spec.tab);
    tab.setAttribute('aria-selected', on ? 'true' : 'false');
    tab.tabIndex = on ? 0 : -1;
    const panel = byId(spec.panel);
    panel.classList.toggle('is-active', on);
    if (on && focus) tab.focus();
  }
  for (const col of document.querySelectorAll('#workspace > .col')) {
    col.classList.toggle('has-active', Boolean(col.querySelector('.panel.is-active')));
  }
  if (changed) for (const fn of listeners) fn(name);
}

function applyRoles() {
  const phone = PHONE.matches;
  for (const spec of TABS) {
    const panel = byId(spec.panel);
    if (phone) {
      panel.setAttribute('role', 'tabpanel');
      panel.setAttribute('aria-labelledby', spec.tab);
    } else {
      panel.removeAttribute('role');
      // Restore the panel's own heading as its name.
      const own = panel.dataset.labelledby;
      if (own) panel.setAttribute('aria-labelledby', own);
      else panel.removeAttribute('aria-labelledby');
    }
  }
  for (const fn of listeners) fn(active);
}

/** Remember each panel's own aria-labelledby (its heading) before phone mode overrides it. */
export function rememberPanelLabels() {
  for (const spec of TABS) {
    const panel = byId(spec.panel);
    if (!panel.dataset.labelledby && panel.getAttribute('aria-labelledby')) {
      panel.dataset.labelledby = panel.getAttribute('aria-labelledby');
    }
  }
}
