// The links page: every short link with its clicks and scans; copy, QR code, edit, delete.

import { api, apiBlob, ApiError } from './api.js';
import { badge, busy, confirmDialog, copyText, formatDate, h, pageHeader, timeElement, toast, toastError } from './dom.js';
import { friendly } from './errors.js';

const PAGE_SIZE = 25;

export async function linksPage(main, _params, { query }) {
  const body = h('tbody');
  const table = h('table', { class: 'table links-table' },
    h('caption', { class: 'visually-hidden' }, 'Your short links'),
    h('thead', {}, h('tr', {},
      h('th', { scope: 'col' }, 'Short link'),
      h('th', { scope: 'col' }, 'Destination'),
      h('th', { scope: 'col', class: 'number' }, 'Clicks'),
      h('th', { scope: 'col', class: 'number' }, 'Scans'),
      h('th', { scope: 'col' }, 'Created'),
      h('th', { scope: 'col' }, h('span', { class: 'visually-hidden' }, 'Actions')))),
    body);
  const more = h('button', { type: 'button', class: 'button secondary', hidden: true }, 'Load more links');
  const empty = h('div', { class: 'empty', hidden: true },
    h('p', {}, 'No links yet.'),
    h('a', { href: '/dashboard/links/new', class: 'button primary', 'data-nav': true }, 'Create your first link'));
  main.append(
    pageHeader('Links', {
      actions: [h('a', { href: '/dashboard/links/new', class: 'button primary', 'data-nav': true }, 'Create link')],
      lead: 'Short links, where they lead, and how often they were clicked and scanned.',
    }),
    h('div', { class: 'card flush' }, table, empty),
    h('div', { class: 'load-more' }, more));

  const highlight = query.get('highlight');
  let cursor = null;
  const load = async () => {
    const page = await api('GET', `/links?limit=${PAGE_SIZE}${cursor ? `&cursor=${cursor}` : ''}`);
    for (const link of page.data) body.append(linkRow(link, link.id === highlight));
    cursor = page.next_cursor;
    more.hidden = !cursor;
    empty.hidden = body.children.length > 0;
    table.hidden = body.children.length === 0;
  };
  more.addEventListener('click', () => busy(more, () => load().catch(toastError)));
  await load();
}

function linkRow(link, highlighted) {
  const row = h('tr', { 'data-link-id': link.id, class: highlighted ? 'highlight' : null });
  const copy = h('button', { type: 'button', class: 'button secondary small', 'aria-label': `Copy ${link.short_url}` }, 'Copy');
  copy.addEventListener('click', async () => {
    if (await copyText(link.short_url)) toast(`Copied ${link.short_url}`);
    else toast('Copying is not allowed here. Select the short link and copy it by hand.', 'error');
  });
  const qr = h('button', { type: 'button', class: 'button secondary small', 'aria-label': `Download the QR code of ${link.slug}` }, 'QR code');
  qr.addEventListener('click', () => busy(qr, () => downloadQr(link)));
  const remove = h('button', { type: 'button', class: 'button danger small', 'aria-label': `Delete ${link.slug}` }, 'Delete');
  remove.addEventListener('click', async () => {
    const sure = await confirmDialog({
      title: `Delete /${link.slug}?`,
      body: 'The short link stops redirecting and answers “410 Gone”. Its slug stays reserved, so a printed QR code never leads somewhere else. This cannot be undone.',
      confirmLabel: 'Delete link',
      danger: true,
    });
    if (!sure) return;
    try {
      await api('DELETE', `/links/${link.id}`);
      row.remove();
      toast(`Deleted /${link.slug}`);
    } catch (error) {
      toastError(error);
    }
  });
  const expiry = link.expires_at
    ? badge(new Date(link.expires_at) <= new Date() ? 'Expired' : `Expires ${formatDate(link.expires_at)}`, new Date(link.expires_at) <= new Date() ? 'danger' : 'muted')
    : null;
  row.append(
    h('td', { 'data-label': 'Short link' },
      h('a', { href: link.short_url, class: 'short-url', target: '_blank', rel: 'noopener noreferrer', title: link.short_url },
        h('span', { class: 'slug' }, `/${link.slug}`),
        h('span', { class: 'host' }, new URL(link.short_url).host)),
      expiry),
    h('td', { 'data-label': 'Destination', class: 'destination' },
      h('span', { class: 'destination-url', title: link.destination_url }, link.destination_url),
      (link.segment || link.campaign) && h('span', { class: 'campaign' },
        [link.segment && `Segment: ${link.segment}`, link.campaign && `Campaign: ${link.campaign}`].filter(Boolean).join(' · ')),
      link.tags.length > 0 && h('span', { class: 'tags' }, link.tags.map((tag) => h('span', { class: 'tag' }, tag)))),
    h('td', { 'data-label': 'Clicks', class: 'number' }, link.clicks.toLocaleString()),
    h('td', { 'data-label': 'Scans', class: 'number' }, link.scans.toLocaleString()),
    h('td', { 'data-label': 'Created', class: 'created' }, timeElement(link.created_at, formatDate(link.created_at))),
    h('td', { class: 'actions-cell' }, h('div', { class: 'row-actions' },
      copy, qr,
      h('a', { href: `/dashboard/links/${link.id}/edit`, class: 'button secondary small', 'data-nav': true, 'aria-label': `Edit ${link.slug}` }, 'Edit'),
      remove)));
  return row;
}

async function downloadQr(link) {
  let blob;
  try {
    blob = await apiBlob(`/links/${link.id}/qr?format=png`);
  } catch (error) {
    if (error instanceof ApiError && error.status === 404 && /route/.test(error.message)) {
      toast('QR codes are not available on this Linkkit server yet.', 'error');
    } else {
      toast(`The QR code could not be made. ${friendly(error).message}`, 'error');
    }
    return;
  }
  const url = URL.createObjectURL(blob);
  const anchor = h('a', { href: url, download: `${link.slug}-qr.png`, hidden: true });
  document.body.append(anchor);
  anchor.click();
  anchor.remove();
  setTimeout(() => URL.revokeObjectURL(url), 10000);
  toast(`Downloaded the QR code of /${link.slug}`);
}
