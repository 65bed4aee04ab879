// The console's HTTP API (same origin, JSON). Every call resolves to {ok, status, data, errors};
// never throws. A 401 `moderator_required` anywhere but the login calls the handler set with
// onSignedOut (the session ended: back to the login form).

import { getLang } from './i18n.js';

let signedOut = () => {};

export function onSignedOut(fn) {
  signedOut = fn;
}

async function request(method, path, body) {
  const sep = path.includes('?') ? '&' : '?';
  const opts = {
    method,
    credentials: 'same-origin',
    cache: 'no-store',
    headers: { Accept: 'application/json' },
  };
  if (body !== undefined) {
    opts.headers['Content-Type'] = 'application/json';
    opts.body = JSON.stringify(body);
  }
  let res;
  try {
    res = await fetch(`${path}${sep}lang=${getLang()}`, opts);
  } catch {
    return { ok: false, status: 0, data: null, errors: [{ code: 'network', message: '' }] };
  }
  let data = null;
  if (res.status !== 204) {
    try { data = await res.json(); } catch { data = null; }
  }
  const errors = !res.ok && data && Array.isArray(data.errors) ? data.errors : [];
  if (!res.ok && !errors.length) errors.push({ code: 'internal_error', message: '' });
  if (res.status === 401 && errors[0].code === 'moderator_required' && path !== '/mod/api/me') {
    signedOut(errors[0]);
  }
  return { ok: res.ok, status: res.status, data, errors };
}

const enc = encodeURIComponent;

export const api = {
  login: (body) => request('POST', '/mod/api/login', body),
  logout: () => request('POST', '/mod/api/logout'),
  me: () => request('GET', '/mod/api/me'),
  categories: () => request('GET', '/mod/api/categories'),
  queue: () => request('GET', '/mod/api/queue'),
  case: (id) => request('GET', `/mod/api/cases/${enc(id)}`),
  decide: (id, body) => request('POST', `/mod/api/cases/${enc(id)}/decide`, body),
  dismiss: (id, reason) => request('POST', `/mod/api/cases/${enc(id)}/dismiss`, { reason }),
  appeals: () => request('GET', '/mod/api/appeals'),
  decideAppeal: (id, grant, answer) => request('POST', `/mod/api/appeals/${enc(id)}/decide`, { grant, answer }),
  audit: (before) => request('GET', before ? `/mod/api/audit?before=${enc(before)}` : '/mod/api/audit'),
};
