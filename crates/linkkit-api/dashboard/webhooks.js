// Settings → Webhooks: every endpoint with its state and how its recent deliveries went.

import { api } from './api.js';
import { badge, h, pageHeader } from './dom.js';

/** How many of an endpoint's latest deliveries the success ratio looks at. */
export const RECENT = 50;

export function settingsCrumbs(...more) {
  return [['Settings', '/dashboard/settings/webhooks'], ...more];
}

export function stateBadge(endpoint) {
  return endpoint.enabled ? badge('Enabled', 'ok') : badge('Disabled', 'danger');
}

/** Why an endpoint is disabled, in words. */
export function disabledReason(endpoint) {
  if (endpoint.enabled) return null;
  return endpoint.disabled_reason ? `Disabled: ${endpoint.disabled_reason}` : 'Disabled';
}

export async function webhooksPage(main) {
  const list = h('ul', { class: 'endpoint-list', 'aria-label': 'Endpoints' });
  const empty = h('div', { class: 'empty', hidden: true },
    h('h2', {}, 'No endpoints yet'),
    h('p', {}, 'Add an endpoint and Linkkit will POST each event you choose to it, signed with the endpoint’s secret.'),
    h('a', { href: '/dashboard/settings/webhooks/new', class: 'button primary', 'data-nav': true }, 'Add Endpoint'));
  main.append(
    pageHeader('Webhooks', {
      crumbs: settingsCrumbs(['Webhooks']),
      actions: [h('a', { href: '/dashboard/settings/webhooks/new', class: 'button primary', 'data-nav': true }, 'Add Endpoint')],
      lead: 'Linkkit sends a signed POST to each endpoint for the events it subscribes to, and retries failures.',
    }),
    list, empty);

  const endpoints = [];
  let cursor = null;
  do {
    const page = await api('GET', `/webhooks?limit=100${cursor ? `&cursor=${cursor}` : ''}`);
    endpoints.push(...page.data);
    cursor = page.next_cursor;
  } while (cursor);
  empty.hidden = endpoints.length > 0;
  for (const endpoint of endpoints) {
    const ratio = h('span', { class: 'muted' }, 'Loading…');
    list.append(endpointItem(endpoint, ratio));
    recentSuccess(endpoint.id).then((text) => ratio.replaceWith(text), () => { ratio.textContent = 'Unknown'; });
  }
}

function endpointItem(endpoint, ratio) {
  const href = `/dashboard/settings/webhooks/${endpoint.id}`;
  return h('li', { class: 'card endpoint-item', 'data-endpoint-id': endpoint.id },
    h('div', { class: 'endpoint-main' },
      h('a', { href, 'data-nav': true, class: 'endpoint-url' }, endpoint.url),
      endpoint.description && h('p', { class: 'muted' }, endpoint.description),
      h('ul', { class: 'chips', 'aria-label': 'Events' }, endpoint.events.map((event) => h('li', { class: 'chip' }, event)))),
    h('dl', { class: 'endpoint-facts' },
      h('div', {}, h('dt', {}, 'State'), h('dd', {}, stateBadge(endpoint),
        endpoint.enabled ? null : h('span', { class: 'reason' }, endpoint.disabled_reason ?? ''))),
      h('div', {}, h('dt', {}, 'Recent success'), h('dd', {}, ratio))),
    h('a', { href, 'data-nav': true, class: 'button secondary small', 'aria-label': `Deliveries and settings of ${endpoint.url}` }, 'Details'));
}

/** The share of the endpoint's latest settled deliveries that succeeded. */
async function recentSuccess(endpointId) {
  const page = await api('GET', `/webhooks/${endpointId}/deliveries?limit=${RECENT}`);
  const settled = page.data.filter((delivery) => delivery.status !== 'pending');
  if (settled.length === 0) {
    return h('span', { class: 'muted' }, page.data.length ? 'Pending' : 'No deliveries yet');
  }
  const succeeded = settled.filter((delivery) => delivery.status === 'succeeded').length;
  const percent = Math.round((100 * succeeded) / settled.length);
  const kind = percent >= 95 ? 'ok' : percent >= 50 ? 'warn' : 'danger';
  return h('span', { class: 'ratio' }, badge(`${percent}%`, kind),
    h('span', { class: 'muted' }, ` ${succeeded} of the last ${settled.length}`));
}
