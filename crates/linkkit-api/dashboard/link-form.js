// Creating and editing a link: destination, slug, segment, campaign, tags and expiry.

import { api } from './api.js';
import { busy, clearErrors, field, formAlert, h, pageHeader, showApiError, showError, toast } from './dom.js';

const CRUMBS = [['Links', '/dashboard/links']];

export function createLinkPage(main, _params, { navigate }) {
  const form = linkForm(null, 'Create link');
  main.append(pageHeader('Create link', { crumbs: [...CRUMBS, ['Create link']] }), form.element);
  form.element.querySelector('input').focus();
  form.onSubmit(async (values) => {
    const body = { destination_url: values.destination_url, tags: values.tags };
    for (const name of ['slug', 'segment', 'campaign', 'expires_at']) {
      if (values[name] !== null) body[name] = values[name];
    }
    const link = await api('POST', '/links', body);
    toast(`Created ${link.short_url}`);
    navigate(`/dashboard/links?highlight=${link.id}`);
  });
}

export async function editLinkPage(main, [id], { navigate }) {
  const link = await api('GET', `/links/${id}`);
  const form = linkForm(link, 'Save changes');
  main.append(pageHeader(`Edit /${link.slug}`, { crumbs: [...CRUMBS, [`/${link.slug}`]] }), form.element);
  form.onSubmit(async (values) => {
    // Only what changed: an unchanged past expiry would otherwise be refused.
    const before = {
      destination_url: link.destination_url,
      slug: link.slug,
      segment: link.segment,
      campaign: link.campaign,
      // As the form shows it (to the minute), so an untouched expiry is no change.
      expires_at: link.expires_at ? new Date(toLocalInput(link.expires_at)).toISOString() : null,
    };
    const changes = {};
    for (const [name, old] of Object.entries(before)) {
      const value = name === 'slug' && values.slug === null ? link.slug : values[name];
      if (value !== old) changes[name] = value;
    }
    if (values.tags.join('\n') !== link.tags.join('\n')) changes.tags = values.tags;
    if (Object.keys(changes).length === 0) {
      toast('Nothing changed.');
      navigate('/dashboard/links');
      return;
    }
    const saved = await api('PATCH', `/links/${id}`, changes);
    toast(`Saved ${saved.short_url}`);
    navigate(`/dashboard/links?highlight=${saved.id}`);
  });
}

/** The form; `onSubmit(handler)` gets the cleaned values, and API errors land on the fields. */
function linkForm(link, submitLabel) {
  const inputs = {
    destination_url: h('input', { type: 'url', inputmode: 'url', required: true, placeholder: 'https://example.com/product', value: link?.destination_url ?? '' }),
    slug: h('input', { type: 'text', autocomplete: 'off', spellcheck: 'false', placeholder: 'summer-sale', value: link?.slug ?? '' }),
    segment: h('input', { type: 'text', placeholder: 'Black Friday 2026', value: link?.segment ?? '' }),
    campaign: h('input', { type: 'text', placeholder: 'Q4 Sales', value: link?.campaign ?? '' }),
    tags: h('input', { type: 'text', placeholder: 'email, launch', value: link?.tags.join(', ') ?? '' }),
    expires_at: h('input', { type: 'datetime-local', value: toLocalInput(link?.expires_at) }),
  };
  const submit = h('button', { type: 'submit', class: 'button primary' }, submitLabel);
  const element = h('form', { class: 'card form', novalidate: true },
    formAlert(),
    field({ name: 'destination_url', label: 'Destination URL', input: inputs.destination_url, help: 'Where the short link leads: an http or https address.' }),
    field({ name: 'slug', label: 'Slug', input: inputs.slug, optional: true, help: link ? 'The path of the short link. Changing it breaks the old short link.' : 'The path of the short link. Leave it empty for a generated one.' }),
    h('div', { class: 'field-row' },
      field({ name: 'segment', label: 'Segment', input: inputs.segment, optional: true }),
      field({ name: 'campaign', label: 'Campaign', input: inputs.campaign, optional: true })),
    field({ name: 'tags', label: 'Tags', input: inputs.tags, optional: true, help: 'Separate tags with commas; up to 20.' }),
    field({ name: 'expires_at', label: 'Expires', input: inputs.expires_at, optional: true, help: 'After this moment the short link answers “410 Gone”. Your local time.' }),
    h('div', { class: 'form-actions' },
      submit,
      h('a', { href: '/dashboard/links', class: 'button secondary', 'data-nav': true }, 'Cancel')));

  const onSubmit = (handler) => element.addEventListener('submit', async (event) => {
    event.preventDefault();
    clearErrors(element);
    const destination = inputs.destination_url.value.trim();
    if (!destination) {
      showError(element, 'destination_url', 'Enter the address the short link should lead to.');
      inputs.destination_url.focus();
      return;
    }
    const text = (input) => input.value.trim() || null;
    const values = {
      destination_url: destination,
      slug: text(inputs.slug),
      segment: text(inputs.segment),
      campaign: text(inputs.campaign),
      tags: inputs.tags.value.split(',').map((tag) => tag.trim()).filter(Boolean),
      expires_at: inputs.expires_at.value ? new Date(inputs.expires_at.value).toISOString() : null,
    };
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

/** An RFC 3339 time as a `datetime-local` value in the browser's time zone. */
function toLocalInput(iso) {
  if (!iso) return '';
  const date = new Date(iso);
  const local = new Date(date.getTime() - date.getTimezoneOffset() * 60000);
  return local.toISOString().slice(0, 16);
}
