// The login form: login, password and the six-digit code of an authenticator app.

import { api } from './api.js';
import { byId } from '../js/dom.js';
import { t } from './i18n.js';

const FIELDS = ['login', 'password', 'code'];

function showField(name, message) {
  const input = byId(`f-${name}`);
  const box = byId(`f-${name}-error`);
  box.textContent = message || '';
  box.hidden = !message;
  if (message) input.setAttribute('aria-invalid', 'true');
  else input.removeAttribute('aria-invalid');
}

function showForm(message) {
  const box = byId('login-error');
  box.textContent = message || '';
  box.hidden = !message;
}

export function resetLogin(notice) {
  const form = byId('login-form');
  form.reset();
  for (const name of FIELDS) showField(name, '');
  showForm(notice || '');
}

export function wireLogin(loggedIn) {
  const form = byId('login-form');
  const submit = form.querySelector('[type=submit]');
  form.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    showForm('');
    const values = {};
    let first = null;
    for (const name of FIELDS) {
      const input = byId(`f-${name}`);
      values[name] = name === 'password' ? input.value : input.value.trim();
      let problem = '';
      if (!values[name]) problem = t(`login.need_${name}`);
      else if (name === 'code' && !/^[0-9]{6}$/.test(values[name])) problem = t('login.code_format');
      showField(name, problem);
      if (problem && !first) first = input;
    }
    if (first) {
      first.focus();
      return;
    }
    submit.disabled = true;
    const res = await api.login(values);
    submit.disabled = false;
    if (res.ok) {
      resetLogin();
      loggedIn(res.data.moderator);
      return;
    }
    const e = res.errors[0];
    if (e.field && FIELDS.includes(e.field)) {
      showField(e.field, e.message);
      byId(`f-${e.field}`).focus();
      return;
    }
    const message = e.code === 'network' ? t('error.unreachable') : (e.message || t('error.generic'));
    showForm(message);
    // A wrong code or password: type them again (the code changes every 30 s anyway).
    byId('f-password').value = '';
    byId('f-code').value = '';
    byId('login-error').focus();
  });
}
