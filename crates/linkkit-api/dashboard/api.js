// Calls to Linkkit's JSON API from the same origin. The browser sends the session cookie by
// itself; every call adds the X-Linkkit-Dashboard header, which the API demands of
// cookie-authenticated requests (its CSRF protection).

export class ApiError extends Error {
  constructor(status, code, message, retryAfter = null) {
    super(message);
    this.status = status;
    this.code = code;
    this.retryAfter = retryAfter;
  }
}

const HEADERS = { 'X-Linkkit-Dashboard': '1', Accept: 'application/json' };

async function send(method, path, body) {
  const init = { method, credentials: 'same-origin', headers: { ...HEADERS } };
  if (body !== undefined) {
    init.headers['Content-Type'] = 'application/json';
    init.body = JSON.stringify(body);
  }
  try {
    return await fetch(`/api/v1${path}`, init);
  } catch {
    throw new ApiError(0, 'network', 'the server could not be reached');
  }
}

async function failure(response, path) {
  const text = await response.text().catch(() => '');
  let json = null;
  try { json = JSON.parse(text); } catch { /* not JSON: a proxy's page, say */ }
  const error = new ApiError(
    response.status,
    json?.error?.code ?? `http_${response.status}`,
    json?.error?.message ?? text.slice(0, 200),
    response.headers.get('retry-after'),
  );
  if (response.status === 401 && path !== '/session') {
    window.dispatchEvent(new CustomEvent('linkkit:signed-out'));
  }
  return error;
}

/** A JSON API call: the parsed body, `null` for 204, or a thrown ApiError. */
export async function api(method, path, body) {
  const response = await send(method, path, body);
  if (!response.ok) throw await failure(response, path);
  if (response.status === 204) return null;
  return response.json();
}

/** A binary download (a QR code): a Blob, or a thrown ApiError. */
export async function apiBlob(path) {
  const response = await send('GET', path);
  if (!response.ok) throw await failure(response, path);
  return response.blob();
}

export const EVENTS = [
  ['link.clicked', 'A short link was clicked'],
  ['link.created', 'A link was created'],
  ['link.updated', 'A link was changed'],
  ['link.deleted', 'A link was deleted'],
  ['qr.scanned', 'A QR code was scanned'],
];
