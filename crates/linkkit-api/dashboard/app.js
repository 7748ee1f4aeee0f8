// The dashboard's entry point: finds who is signed in, picks the page from the path, and moves
// between pages without reloading (links marked `data-nav`, the back button).

import { api } from './api.js';
import { h, toastError } from './dom.js';
import { friendly } from './errors.js';
import { signInPage } from './sign-in.js';
import { linksPage } from './links.js';
import { createLinkPage, editLinkPage } from './link-form.js';
import { webhooksPage } from './webhooks.js';
import { addEndpointPage, editEndpointPage } from './endpoint-form.js';
import { endpointPage } from './endpoint.js';

const ID = '([a-z]+_[0-9a-f]{32})';

// [pattern, page, title, section of the main navigation]
const ROUTES = [
  [/^\/dashboard\/sign-in$/, signInPage, 'Sign in', null],
  [/^\/dashboard\/links$/, linksPage, 'Links', 'links'],
  [/^\/dashboard\/links\/new$/, createLinkPage, 'Create link', 'links'],
  [new RegExp(`^/dashboard/links/${ID}/edit$`), editLinkPage, 'Edit link', 'links'],
  [/^\/dashboard\/settings\/webhooks$/, webhooksPage, 'Webhooks', 'settings'],
  [/^\/dashboard\/settings\/webhooks\/new$/, addEndpointPage, 'Add Endpoint', 'settings'],
  [new RegExp(`^/dashboard/settings/webhooks/${ID}$`), endpointPage, 'Endpoint', 'settings'],
  [new RegExp(`^/dashboard/settings/webhooks/${ID}/edit$`), editEndpointPage, 'Edit endpoint', 'settings'],
];

const ALIASES = {
  '/': '/dashboard/links',
  '/dashboard': '/dashboard/links',
  '/dashboard/': '/dashboard/links',
  '/dashboard/settings': '/dashboard/settings/webhooks',
};

let session = null;
let cleanup = null;
let firstRender = true;

export function navigate(path, { replace = false } = {}) {
  if (replace) history.replaceState(null, '', path);
  else history.pushState(null, '', path);
  render();
}

function setSession(value) {
  session = value;
  document.getElementById('workspace-name').textContent = value ? value.workspace_name : '';
}

async function currentSession() {
  if (session) return session;
  try {
    setSession(await api('GET', '/session'));
  } catch (error) {
    if (error.status !== 401 && error.status !== 403) throw error;
  }
  return session;
}

function notFound(main) {
  main.append(h('div', { class: 'empty' },
    h('h1', { tabindex: '-1' }, 'Page not found'),
    h('p', {}, 'There is no dashboard page at this address. ', h('a', { href: '/dashboard/links', 'data-nav': true }, 'Go to your links'), '.')));
}

async function render() {
  if (cleanup) cleanup();
  cleanup = null;
  const path = location.pathname;
  if (ALIASES[path]) {
    history.replaceState(null, '', ALIASES[path]);
    return render();
  }
  const main = document.getElementById('main');
  const route = ROUTES.find(([pattern]) => pattern.test(path));
  const [pattern, page, title, section] = route ?? [null, notFound, 'Page not found', null];
  const isSignIn = page === signInPage;

  if (!isSignIn) {
    try {
      if (!(await currentSession())) {
        const next = encodeURIComponent(path + location.search);
        return navigate(`/dashboard/sign-in?next=${next}`, { replace: true });
      }
    } catch (error) {
      main.replaceChildren(h('div', { class: 'empty' },
        h('h1', { tabindex: '-1' }, 'The dashboard cannot start'),
        h('p', {}, friendly(error).message)));
      return;
    }
  }

  document.getElementById('topbar').hidden = isSignIn;
  for (const link of document.querySelectorAll('.main-nav a')) {
    if (link.dataset.section === section) link.setAttribute('aria-current', 'page');
    else link.removeAttribute('aria-current');
  }
  document.title = `${title} · Linkkit`;
  main.replaceChildren();
  const params = pattern ? pattern.exec(path).slice(1) : [];
  const context = { session, setSession, navigate, query: new URLSearchParams(location.search) };
  try {
    cleanup = (await page(main, params, context)) ?? null;
  } catch (error) {
    toastError(error);
  }
  if (!firstRender) main.querySelector('h1')?.focus();
  firstRender = false;
}

document.addEventListener('click', (event) => {
  const link = event.target.closest('a[data-nav]');
  if (!link || event.defaultPrevented || event.button !== 0) return;
  if (event.metaKey || event.ctrlKey || event.shiftKey || event.altKey) return;
  event.preventDefault();
  navigate(link.pathname + link.search);
});

window.addEventListener('popstate', render);

window.addEventListener('linkkit:signed-out', () => {
  if (!session) return;
  setSession(null);
  navigate('/dashboard/sign-in?expired=1', { replace: true });
});

document.getElementById('sign-out').addEventListener('click', async () => {
  try {
    await api('DELETE', '/session');
  } catch (error) {
    toastError(error);
    return;
  }
  setSession(null);
  navigate('/dashboard/sign-in?signed_out=1');
});

render();
