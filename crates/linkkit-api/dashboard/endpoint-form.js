// Add Endpoint and edit an endpoint: its URL, description, and a checkbox per event.

import { api, EVENTS } from './api.js';
import { busy, clearErrors, field, formAlert, h, pageHeader, showApiError, showError, toast, uniqueId } from './dom.js';
import { settingsCrumbs } from './webhooks.js';

const WEBHOOKS = ['Webhooks', '/dashboard/settings/webhooks'];

export function addEndpointPage(main, _params, { navigate }) {
  const form = endpointForm(null, 'Add Endpoint');
  main.append(
    pageHeader('Add Endpoint', {
      crumbs: settingsCrumbs(WEBHOOKS, ['Add Endpoint']),
      lead: 'Linkkit will POST every event you choose to this URL, signed with the endpoint’s own secret.',
    }),
    form.element);
  form.element.querySelector('input').focus();
  form.onSubmit(async (values) => {
    const endpoint = await api('POST', '/webhooks', values);
    toast('Endpoint added. Its signing secret is on this page.');
    navigate(`/dashboard/settings/webhooks/${endpoint.id}`);
  });
}

export async function editEndpointPage(main, [id], { navigate }) {
  const endpoint = await api('GET', `/webhooks/${id}`);
  const form = endpointForm(endpoint, 'Save changes');
  main.append(
    pageHeader('Edit endpoint', { crumbs: settingsCrumbs(WEBHOOKS, [endpoint.url, `/dashboard/settings/webhooks/${id}`], ['Edit']) }),
    form.element);
  form.onSubmit(async (values) => {
    await api('PATCH', `/webhooks/${id}`, values);
    toast('Endpoint saved.');
    navigate(`/dashboard/settings/webhooks/${id}`);
  });
}

function endpointForm(endpoint, submitLabel) {
  const url = h('input', { type: 'url', inputmode: 'url', required: true, placeholder: 'https://example.com/webhooks', value: endpoint?.url ?? '' });
  const description = h('input', { type: 'text', placeholder: 'Order system', value: endpoint?.description ?? '' });
  const chosen = new Set(endpoint?.events ?? []);
  const boxes = EVENTS.map(([name, meaning]) => {
    const id = uniqueId('event');
    const box = h('input', { type: 'checkbox', id, name: 'events', value: name, checked: chosen.has(name) });
    return h('div', { class: 'checkbox' },
      box,
      h('label', { for: id }, h('code', {}, name), h('span', { class: 'muted' }, meaning)));
  });
  const errorId = uniqueId('events-error');
  const selectAll = h('button', { type: 'button', class: 'button link small' }, 'Select all');
  selectAll.addEventListener('click', () => {
    for (const box of element.querySelectorAll('input[name="events"]')) box.checked = true;
  });
  const events = h('fieldset', { class: 'field events', 'data-field': 'events', 'aria-describedby': errorId },
    h('legend', {}, 'Events to send'),
    h('div', { class: 'checkbox-grid' }, boxes),
    selectAll,
    h('p', { class: 'field-error', id: errorId, role: 'alert', hidden: true }));
  const submit = h('button', { type: 'submit', class: 'button primary' }, submitLabel);
  const cancel = endpoint ? `/dashboard/settings/webhooks/${endpoint.id}` : '/dashboard/settings/webhooks';
  const element = h('form', { class: 'card form', novalidate: true, 'aria-label': submitLabel },
    formAlert(),
    field({ name: 'url', label: 'Endpoint URL', input: url, help: 'The https address of your server that receives the webhooks.' }),
    field({ name: 'description', label: 'Description', input: description, optional: true, help: 'A note for you, such as what the endpoint is for.' }),
    events,
    h('div', { class: 'form-actions' },
      submit,
      h('a', { href: cancel, class: 'button secondary', 'data-nav': true }, 'Cancel')));

  const onSubmit = (handler) => element.addEventListener('submit', async (event) => {
    event.preventDefault();
    clearErrors(element);
    const values = {
      url: url.value.trim(),
      description: description.value.trim(),
      events: [...element.querySelectorAll('input[name="events"]:checked')].map((box) => box.value),
    };
    let valid = true;
    if (!values.url) {
      showError(element, 'url', 'Enter the URL that should receive the webhooks.');
      valid = false;
    }
    if (values.events.length === 0) {
      showError(element, 'events', 'Choose at least one event to send to this endpoint.');
      valid = false;
    }
    if (!valid) {
      element.querySelector('[aria-invalid="true"]')?.focus();
      return;
    }
    await busy(submit, async () => {
      try {
        await handler(values);
      } catch (error) {
        showApiError(element, error);
      }
    });
  });
  return { element, onSubmit };
}
