// API errors in words a person understands, and the form field each one is about.

import { ApiError } from './api.js';

// 422 codes that are about one field of a form.
const FIELD_OF_CODE = {
  invalid_url: 'url',
  invalid_events: 'events',
  invalid_description: 'description',
  invalid_destination_url: 'destination_url',
  invalid_slug: 'slug',
  invalid_tags: 'tags',
  invalid_expires_at: 'expires_at',
};

// The API words its messages as `field: rule`, with `code` in backticks.
function detailOf(message) {
  const text = String(message ?? '').replace(/^[a-z_]+: /, '').replace(/`([^`]*)`/g, '“$1”');
  return sentence(text);
}

function sentence(text) {
  const trimmed = text.trim();
  if (!trimmed) return '';
  const capital = trimmed[0].toUpperCase() + trimmed.slice(1);
  return /[.!?]$/.test(capital) ? capital : `${capital}.`;
}

/** `{ message, field }` for any error thrown while calling the API. */
export function friendly(error) {
  if (!(error instanceof ApiError)) {
    console.error(error);
    return { message: 'Something unexpected went wrong in this page. Reload it and try again.' };
  }
  const detail = detailOf(error.message);
  const field = FIELD_OF_CODE[error.code];
  switch (error.code) {
    case 'network':
      return { message: 'Linkkit’s server cannot be reached. Check that it is running and that you are online, then try again.' };
    case 'unauthorized':
      return { message: 'Your session has ended. Sign in again to go on.' };
    case 'forbidden':
      return { message: 'The server refused this request from the dashboard. Reload the page and try again.' };
    case 'not_found': {
      if (/route/.test(error.message)) return { message: 'This Linkkit server does not offer that yet.' };
      const thing = String(error.message).replace(/^no such /, '') || 'item';
      return { message: `That ${thing} no longer exists. It may have been deleted.` };
    }
    case 'conflict':
      return { field: 'slug', message: 'That slug is already taken (deleted links keep their slugs). Choose another one.' };
    case 'payload_too_large':
      return { message: 'That is more text than Linkkit accepts at once. Shorten it and try again.' };
    case 'rate_limited': {
      const seconds = Number(error.retryAfter) || 1;
      return { message: `Too many requests at once. Wait ${seconds} second${seconds === 1 ? '' : 's'} and try again.` };
    }
    case 'unavailable':
      return { message: 'Linkkit cannot reach its database or message broker right now. Try again in a moment.' };
    case 'internal_error':
      return { message: 'Something went wrong on the server. Try again; if it keeps happening, the server’s log says why.' };
    case 'bad_request':
      return { message: 'The server could not read that request. Reload the page and try again.' };
    case 'invalid_url':
      return { field, message: `This URL cannot receive webhooks: ${detail}` };
    case 'invalid_destination_url':
      return { field, message: `This destination cannot be used: ${detail}` };
    case 'invalid_slug':
      return { field, message: 'A slug has 1 to 64 letters, digits, “-” or “_”, and starts with a letter or digit.' };
    case 'invalid_events':
      return { field, message: /at least one/.test(error.message) ? 'Choose at least one event to send to this endpoint.' : detail };
    case 'invalid_expires_at':
      return { field, message: 'Choose an expiry date and time in the future.' };
    case 'invalid_field': {
      const named = /^([a-z_]+): /.exec(error.message ?? '');
      return { field: named?.[1], message: detail };
    }
    default:
      return { field, message: detail || `The server answered with status ${error.status}.` };
  }
}
