// The sign-in page: an API key in, a session cookie out.

import { api } from './api.js';
import { busy, clearErrors, field, formAlert, h, showApiError, showError } from './dom.js';

export function signInPage(main, _params, { query, setSession, navigate }) {
  const key = h('input', { type: 'password', autocomplete: 'off', spellcheck: 'false', required: true, placeholder: 'lk_…' });
  const submit = h('button', { type: 'submit', class: 'button primary wide' }, 'Sign in');
  const notice = query.get('expired')
    ? h('p', { class: 'notice warn', role: 'status' }, 'Your session has ended. Sign in again to go on.')
    : query.get('signed_out')
      ? h('p', { class: 'notice', role: 'status' }, 'You are signed out.')
      : null;
  const form = h('form', { class: 'card sign-in', novalidate: true },
    h('div', { class: 'sign-in-brand' },
      h('img', { src: '/dashboard/assets/favicon.svg', alt: '', width: 40, height: 40 }),
      h('span', {}, 'Linkkit')),
    h('h1', { tabindex: '-1' }, 'Sign in to your workspace'),
    notice,
    formAlert(),
    field({
      name: 'api_key',
      label: 'API key',
      input: key,
      help: h('span', {}, 'An API key of your workspace, starting with “lk_”. Make one with ',
        h('code', {}, 'linkkit key create --workspace ws_…'), '.'),
    }),
    submit);

  form.addEventListener('submit', async (event) => {
    event.preventDefault();
    clearErrors(form);
    const value = key.value.trim();
    if (!value) {
      showError(form, 'api_key', 'Enter your API key.');
      key.focus();
      return;
    }
    await busy(submit, async () => {
      try {
        setSession(await api('POST', '/session', { api_key: value }));
      } catch (error) {
        if (error.status === 401) {
          showError(form, 'api_key', 'That API key is not valid. Check it for typos; it may also have been revoked.');
          key.focus();
        } else {
          showApiError(form, error);
        }
        return;
      }
      const next = query.get('next');
      navigate(next && next.startsWith('/dashboard/') ? next : '/dashboard/links', { replace: true });
    });
  });

  main.append(h('div', { class: 'sign-in-page' }, form));
  key.focus();
}
