// One endpoint: its state and settings, its signing secret, a test event, and its deliveries.

import { api, EVENTS } from './api.js';
import { busy, confirmDialog, copyText, fill, formatDateTime, h, pageHeader, toast, toastError, uniqueId } from './dom.js';
import { deliveryLog } from './deliveries.js';
import { settingsCrumbs, stateBadge } from './webhooks.js';

const MASK = 'whsec_••••••••••••••••••••••••';

export async function endpointPage(main, [id], { navigate }) {
  let endpoint = await api('GET', `/webhooks/${id}`);
  const log = deliveryLog(endpoint.id);

  const state = h('div', { class: 'state' });
  const toggle = h('button', { type: 'button', class: 'button secondary' });
  const renderState = () => {
    fill(state, stateBadge(endpoint),
      !endpoint.enabled && h('span', { class: 'reason' },
        endpoint.disabled_reason ? `Why: ${endpoint.disabled_reason}` : 'Disabled'),
      !endpoint.enabled && h('span', { class: 'muted' }, 'It gets no deliveries; what it misses can be replayed after enabling it.'));
    toggle.textContent = endpoint.enabled ? 'Disable' : 'Enable';
  };
  renderState();
  toggle.addEventListener('click', () => busy(toggle, async () => {
    try {
      endpoint = await api('PATCH', `/webhooks/${id}`, { enabled: !endpoint.enabled });
      renderState();
      toast(endpoint.enabled ? 'Endpoint enabled. Deliveries resume.' : 'Endpoint disabled. It gets no deliveries until you enable it.');
    } catch (error) {
      toastError(error);
    }
  }));

  const remove = h('button', { type: 'button', class: 'button danger' }, 'Delete');
  remove.addEventListener('click', async () => {
    const sure = await confirmDialog({
      title: 'Delete this endpoint?',
      body: `Linkkit stops sending webhooks to ${endpoint.url} and forgets its delivery log. This cannot be undone.`,
      confirmLabel: 'Delete endpoint',
      danger: true,
    });
    if (!sure) return;
    try {
      await api('DELETE', `/webhooks/${id}`);
      toast('Endpoint deleted.');
      navigate('/dashboard/settings/webhooks');
    } catch (error) {
      toastError(error);
    }
  });

  main.append(
    pageHeader(endpoint.url, {
      crumbs: settingsCrumbs(['Webhooks', '/dashboard/settings/webhooks'], ['Endpoint']),
      actions: [
        h('a', { href: `/dashboard/settings/webhooks/${id}/edit`, class: 'button secondary', 'data-nav': true }, 'Edit'),
        toggle,
        remove,
      ],
    }),
    h('div', { class: 'grid-2' },
      h('section', { class: 'card', 'aria-labelledby': 'about-title' },
        h('h2', { id: 'about-title' }, 'Endpoint'),
        h('dl', { class: 'facts' },
          h('div', {}, h('dt', {}, 'State'), h('dd', {}, state)),
          endpoint.description && h('div', {}, h('dt', {}, 'Description'), h('dd', {}, endpoint.description)),
          h('div', {}, h('dt', {}, 'Events'), h('dd', {}, h('ul', { class: 'chips' }, endpoint.events.map((e) => h('li', { class: 'chip' }, e))))),
          h('div', {}, h('dt', {}, 'Created'), h('dd', {}, formatDateTime(endpoint.created_at))),
          h('div', {}, h('dt', {}, 'Id'), h('dd', {}, h('code', {}, endpoint.id))))),
      h('div', { class: 'stack' },
        secretSection(id),
        testSection(id, () => log.refresh()))),
    log.element);
  log.start();
  return () => log.stop();
}

function secretSection(id) {
  let secret = null;
  const value = h('code', { class: 'secret', 'aria-live': 'polite' }, MASK);
  const note = h('p', { class: 'help' }, 'Verify each webhook’s signature with this secret (Standard Webhooks).');
  const reveal = h('button', { type: 'button', class: 'button secondary small', 'aria-pressed': 'false' }, 'Reveal');
  const copy = h('button', { type: 'button', class: 'button secondary small' }, 'Copy');
  const rotate = h('button', { type: 'button', class: 'button secondary small' }, 'Rotate secret');
  const load = async () => {
    secret ??= (await api('GET', `/webhooks/${id}/secret`)).secret;
    return secret;
  };
  const show = (shown) => {
    value.textContent = shown ? secret : MASK;
    reveal.textContent = shown ? 'Hide' : 'Reveal';
    reveal.setAttribute('aria-pressed', String(shown));
  };
  reveal.addEventListener('click', () => busy(reveal, async () => {
    try {
      const shown = reveal.getAttribute('aria-pressed') !== 'true';
      if (shown) await load();
      show(shown);
    } catch (error) {
      toastError(error);
    }
  }));
  copy.addEventListener('click', () => busy(copy, async () => {
    try {
      toast((await copyText(await load())) ? 'Signing secret copied.' : 'Copying is not allowed here; reveal the secret and copy it by hand.');
    } catch (error) {
      toastError(error);
    }
  }));
  rotate.addEventListener('click', async () => {
    const sure = await confirmDialog({
      title: 'Rotate the signing secret?',
      body: 'Linkkit makes a new secret. The current one keeps signing beside it for 24 hours, so you have time to update your server.',
      confirmLabel: 'Rotate secret',
    });
    if (!sure) return;
    await busy(rotate, async () => {
      try {
        const rotated = await api('POST', `/webhooks/${id}/rotate-secret`);
        secret = rotated.secret;
        show(true);
        note.textContent = `New secret. The previous one also signs until ${formatDateTime(rotated.previous_secret_expires_at)}.`;
        toast('Signing secret rotated.');
      } catch (error) {
        toastError(error);
      }
    });
  });
  return h('section', { class: 'card', 'aria-labelledby': 'secret-title' },
    h('h2', { id: 'secret-title' }, 'Signing secret'),
    value, note,
    h('div', { class: 'button-row' }, reveal, copy, rotate));
}

function testSection(id, onSent) {
  const selectId = uniqueId('test-event');
  const select = h('select', { id: selectId },
    EVENTS.map(([name]) => h('option', { value: name, selected: name === 'link.created' }, name)));
  const send = h('button', { type: 'submit', class: 'button primary' }, 'Send test event');
  const form = h('form', { class: 'inline-form' },
    h('div', { class: 'field' }, h('label', { for: selectId }, 'Event type'), select),
    send);
  form.addEventListener('submit', (event) => {
    event.preventDefault();
    busy(send, async () => {
      try {
        const delivery = await api('POST', `/webhooks/${id}/test`, { event: select.value });
        toast(`Test ${delivery.event} event sent. It shows in the deliveries below.`);
        onSent();
      } catch (error) {
        toastError(error);
      }
    });
  });
  return h('section', { class: 'card', 'aria-labelledby': 'test-title' },
    h('h2', { id: 'test-title' }, 'Send test event'),
    h('p', { class: 'help' }, 'A sample event goes to this endpoint only, whatever it subscribes to.'),
    form);
}

