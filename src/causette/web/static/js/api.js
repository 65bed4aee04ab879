// HTTP API (same origin, JSON). Every call resolves to {ok, status, data}; never throws.

async function request(method, path, body) {
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
    res = await fetch(path, opts);
  } catch {
    return { ok: false, status: 0, data: null };
  }
  let data = null;
  if (res.status !== 204) {
    try { data = await res.json(); } catch { data = null; }
  }
  return { ok: res.ok, status: res.status, data };
}

export const api = {
  site: (lang) => request('GET', lang ? `/api/site?lang=${encodeURIComponent(lang)}` : '/api/site'),
  session: () => request('GET', '/api/session'),
  enter: (body) => request('POST', '/api/session', body),
  quit: () => request('DELETE', '/api/session'),
  postal: (code) => request('GET', `/api/geo/postal/${encodeURIComponent(code)}`),
  areas: () => request('GET', '/api/geo/areas'),
  decision: (code, lang) => request('GET', `/api/decisions/${encodeURIComponent(code)}${lang ? `?lang=${encodeURIComponent(lang)}` : ''}`),
  appeal: (code, text, lang) => request('POST', `/api/decisions/${encodeURIComponent(code)}/appeal${lang ? `?lang=${encodeURIComponent(lang)}` : ''}`, { text }),
  banCookie: (token) => request('POST', '/api/ban-cookie', { token }),
  caseStatus: (code, lang) => request('GET', `/api/cases/${encodeURIComponent(code)}${lang ? `?lang=${encodeURIComponent(lang)}` : ''}`),
};

/** The list of errors of a failed answer (a network failure or an unreadable body gives one). */
export function errorsOf(res, fallbackMessage) {
  const errors = res && res.data && Array.isArray(res.data.errors) ? res.data.errors : null;
  if (errors && errors.length) return errors;
  return [{ code: res && res.status === 0 ? 'network' : 'internal_error', message: fallbackMessage }];
}
