// An endpoint's delivery log: newest first, filtered by status, each delivery opening onto its
// attempts, with Resend (Replay for dead ones). It polls, so new deliveries and attempts appear
// by themselves.

import { api } from './api.js';
import { badge, busy, fill, formatDateTime, h, timeElement, toast, toastError, uniqueId } from './dom.js';
import { friendly } from './errors.js';

const POLL_MS = 3000;
const PAGE_SIZE = 25;

const STATUSES = [
  ['', 'All statuses'],
  ['pending', 'Pending'],
  ['succeeded', 'Succeeded'],
  ['failed', 'Failed, retrying'],
  ['dead', 'Dead'],
];

const STATUS_BADGE = {
  pending: ['Pending', 'muted'],
  succeeded: ['Succeeded', 'ok'],
  failed: ['Failed, retrying', 'warn'],
  dead: ['Dead', 'danger'],
};

export function deliveryLog(endpointId) {
  const filterId = uniqueId('status-filter');
  const filter = h('select', { id: filterId }, STATUSES.map(([value, label]) => h('option', { value }, label)));
  const replay = h('button', { type: 'button', class: 'button secondary' }, 'Replay dead deliveries');
  const updated = h('span', { class: 'muted live', role: 'status' });
  const list = h('ol', { class: 'deliveries', 'aria-label': 'Deliveries, newest first' });
  const empty = h('p', { class: 'empty-line muted', hidden: true });
  const problem = h('p', { class: 'notice warn', hidden: true });
  const more = h('button', { type: 'button', class: 'button secondary', hidden: true }, 'Load older deliveries');
  const element = h('section', { class: 'card deliveries-card', 'aria-labelledby': 'deliveries-title' },
    h('div', { class: 'section-head' },
      h('h2', { id: 'deliveries-title' }, 'Deliveries'),
      h('div', { class: 'toolbar' },
        h('label', { for: filterId }, 'Status'), filter, replay)),
    h('p', { class: 'help' }, 'Newest first. This list updates by itself every few seconds. ', updated),
    problem, list, empty, h('div', { class: 'load-more' }, more));

  const items = new Map(); // delivery id → its item (see deliveryItem)
  let cursor = null;
  let timer = null;
  let generation = 0;

  const query = (extra = '') => {
    const status = filter.value ? `&status=${filter.value}` : '';
    return `/webhooks/${endpointId}/deliveries?limit=${PAGE_SIZE}${status}${extra}`;
  };

  const place = () => {
    // Moves only what is out of place, so keyboard focus inside the list survives a refresh.
    const ordered = [...items.keys()].sort().reverse().map((id) => items.get(id));
    ordered.forEach((item, index) => {
      if (list.children[index] !== item.element) list.insertBefore(item.element, list.children[index] ?? null);
    });
    while (list.children.length > ordered.length) list.lastElementChild.remove();
    empty.hidden = items.size > 0;
    empty.textContent = filter.value ? 'No deliveries with this status.' : 'No deliveries yet. Send a test event, or wait for the next event this endpoint subscribes to.';
  };

  const upsert = (delivery) => {
    const known = items.get(delivery.id);
    if (known) {
      known.update(delivery);
    } else {
      items.set(delivery.id, deliveryItem(delivery, () => refresh()));
    }
  };

  // The newest page again: new deliveries join, known ones change in place, open ones reload
  // their attempts. Older pages loaded by hand stay.
  const refresh = async () => {
    const mine = generation;
    try {
      const page = await api('GET', query());
      if (mine !== generation) return;
      if (items.size === 0) cursor = page.next_cursor;
      const fresh = new Set(page.data.map((delivery) => delivery.id));
      const oldestShown = page.data.at(-1)?.id;
      for (const [id, item] of items) {
        // Gone from the newest page although newer than its oldest: no longer matches the filter.
        if (!fresh.has(id) && oldestShown && id > oldestShown) items.delete(id);
        else if (!fresh.has(id) && page.data.length === 0) items.delete(id);
        else if (item.isOpen()) item.reloadAttempts();
      }
      page.data.forEach(upsert);
      place();
      more.hidden = !cursor;
      problem.hidden = true;
      updated.textContent = `Updated ${new Date().toLocaleTimeString()}.`;
    } catch (error) {
      problem.textContent = `The deliveries could not be updated. ${friendly(error).message}`;
      problem.hidden = false;
    }
  };

  filter.addEventListener('change', () => {
    generation += 1;
    items.clear();
    cursor = null;
    place();
    refresh();
  });

  more.addEventListener('click', () => busy(more, async () => {
    try {
      const page = await api('GET', query(`&cursor=${cursor}`));
      page.data.forEach(upsert);
      cursor = page.next_cursor;
      more.hidden = !cursor;
      place();
    } catch (error) {
      toastError(error);
    }
  }));

  replay.addEventListener('click', () => busy(replay, async () => {
    try {
      const { count } = await api('POST', `/webhooks/${endpointId}/replay`);
      toast(count === 0 ? 'There are no dead deliveries to replay.' : `Replaying ${count} dead deliver${count === 1 ? 'y' : 'ies'}.`);
      refresh();
    } catch (error) {
      toastError(error);
    }
  }));

  const tick = () => {
    if (document.visibilityState === 'visible') refresh();
  };

  return {
    element,
    refresh,
    start() {
      refresh();
      timer = setInterval(tick, POLL_MS);
    },
    stop() {
      clearInterval(timer);
      generation += 1;
    },
  };
}

function statusBadge(status) {
  const [label, kind] = STATUS_BADGE[status] ?? [status, 'muted'];
  return badge(label, kind);
}

function deliveryItem(initial, onResent) {
  let data = initial;
  let loaded = false;
  const summary = h('summary');
  const attempts = h('div', { class: 'attempts' }, h('p', { class: 'muted' }, 'Loading attempts…'));
  const resend = h('button', { type: 'button', class: 'button secondary small' });
  const details = h('details', { class: 'delivery', 'data-delivery-id': data.id },
    summary,
    h('div', { class: 'delivery-body' },
      h('div', { class: 'delivery-meta' },
        h('span', {}, 'Event ', h('code', {}, data.event_id)),
        h('span', {}, 'Delivery ', h('code', {}, data.id)),
        resend),
      attempts));

  const render = () => {
    fill(summary,
      statusBadge(data.status),
      h('code', { class: 'event-type' }, data.event),
      h('span', { class: 'muted' }, timeElement(data.created_at)),
      h('span', { class: 'muted attempt-count' }, `${data.attempt_count} attempt${data.attempt_count === 1 ? '' : 's'}`),
      data.status === 'failed' && data.next_attempt_at
        && h('span', { class: 'muted' }, 'next ', timeElement(data.next_attempt_at)));
    resend.textContent = data.status === 'dead' ? 'Replay' : 'Resend';
    resend.setAttribute('aria-label', `${resend.textContent} ${data.event} delivery ${data.id}`);
  };

  const reloadAttempts = async () => {
    try {
      const full = await api('GET', `/deliveries/${data.id}`);
      data = { ...data, ...full };
      render();
      attempts.replaceChildren(attemptTable(full.attempts));
      loaded = true;
    } catch (error) {
      attempts.replaceChildren(h('p', { class: 'notice warn' }, friendly(error).message));
    }
  };

  details.addEventListener('toggle', () => {
    if (details.open && !loaded) reloadAttempts();
  });

  resend.addEventListener('click', () => busy(resend, async () => {
    try {
      data = { ...data, ...(await api('POST', `/deliveries/${data.id}/resend`)) };
      render();
      toast(`Sending the ${data.event} delivery again.`);
      onResent();
    } catch (error) {
      toastError(error);
    }
  }));

  render();
  return {
    element: details,
    update(next) {
      data = { ...data, ...next };
      render();
    },
    isOpen: () => details.open,
    reloadAttempts,
  };
}

function attemptTable(attempts) {
  if (!attempts || attempts.length === 0) {
    return h('p', { class: 'muted' }, 'No attempt yet: the delivery is waiting for a sender.');
  }
  return h('table', { class: 'table attempts-table' },
    h('caption', { class: 'visually-hidden' }, 'Attempts, oldest first'),
    h('thead', {}, h('tr', {},
      ['Attempt', 'Time', 'Status', 'Duration', 'Error', 'Response'].map((title) => h('th', { scope: 'col' }, title)))),
    // Numbered in order; a resend or replay starts the API's `attempt` at 1 again.
    h('tbody', {}, attempts.map((attempt, index) => h('tr', { class: 'attempt' },
      h('td', { 'data-label': 'Attempt' }, `#${index + 1}`,
        index > 0 && attempt.attempt === 1 && h('span', { class: 'muted resent' }, ' resent')),
      h('td', { 'data-label': 'Time' }, timeElement(attempt.at, formatDateTime(attempt.at))),
      h('td', { 'data-label': 'Status', class: 'status-code' }, attempt.status_code === null
        ? badge('No answer', 'danger')
        : badge(String(attempt.status_code), attempt.status_code >= 200 && attempt.status_code < 300 ? 'ok' : 'danger')),
      h('td', { 'data-label': 'Duration' }, `${attempt.duration_ms} ms`),
      h('td', { 'data-label': 'Error' }, attempt.error ?? h('span', { class: 'muted' }, '—')),
      h('td', { 'data-label': 'Response' }, attempt.response_body
        ? h('pre', { class: 'response-body' }, attempt.response_body)
        : h('span', { class: 'muted' }, '—'))))));
}
