// Small helpers to build pages without a framework: elements, forms and their errors, toasts,
// confirmation dialogs, dates, the clipboard.

import { friendly } from './errors.js';

/**
 * `h('button', { class: 'button', onclick }, 'Save')`. Props starting with `on` are listeners,
 * `class`, `text`, `html`-free; everything else is an attribute (`false`/`null` leave it out).
 */
export function h(tag, props = {}, ...children) {
  const element = document.createElement(tag);
  for (const [name, value] of Object.entries(props ?? {})) {
    if (value === false || value === null || value === undefined) continue;
    if (name.startsWith('on') && typeof value === 'function') {
      element.addEventListener(name.slice(2), value);
    } else if (name === 'class') {
      element.className = value;
    } else if (name === 'text') {
      element.textContent = value;
    } else if (name === 'value' || name === 'checked' || name === 'selected') {
      element[name] = value;
    } else {
      element.setAttribute(name, value === true ? '' : String(value));
    }
  }
  append(element, children);
  return element;
}

/** Replaces an element's children, skipping `false`, `null` and `undefined` like `h` does. */
export function fill(element, ...children) {
  element.replaceChildren();
  append(element, children);
  return element;
}

function append(element, children) {
  for (const child of children.flat(Infinity)) {
    if (child === null || child === undefined || child === false) continue;
    element.append(child instanceof Node ? child : String(child));
  }
}

let uniqueCounter = 0;
export function uniqueId(prefix) {
  uniqueCounter += 1;
  return `${prefix}-${uniqueCounter}`;
}

/** A page title (focusable, so a screen reader lands on it) with actions beside it. */
export function pageHeader(title, { crumbs = [], actions = [], lead } = {}) {
  return h('div', { class: 'page-header' },
    crumbs.length > 0 && h('nav', { class: 'crumbs', 'aria-label': 'Breadcrumb' },
      h('ol', {}, crumbs.map(([label, href]) => h('li', {},
        href ? h('a', { href, 'data-nav': true }, label) : h('span', { 'aria-current': 'page' }, label))))),
    h('div', { class: 'page-title' },
      h('h1', { tabindex: '-1' }, title),
      actions.length > 0 && h('div', { class: 'actions' }, actions)),
    lead && h('p', { class: 'lead' }, lead));
}

/** A labelled form field with help text and a place for its error message. */
export function field({ name, label, input, help, optional = false }) {
  const id = input.id || uniqueId(name);
  input.id = id;
  input.name = name;
  const helpId = help ? `${id}-help` : null;
  const errorId = `${id}-error`;
  input.setAttribute('aria-describedby', [helpId, errorId].filter(Boolean).join(' '));
  return h('div', { class: 'field', 'data-field': name },
    h('label', { for: id }, label, optional && h('span', { class: 'optional' }, ' (optional)')),
    input,
    help && h('p', { class: 'help', id: helpId }, help),
    h('p', { class: 'field-error', id: errorId, role: 'alert', hidden: true }));
}

/** The alert at the top of a form that sums up what went wrong. */
export function formAlert() {
  return h('div', { class: 'form-alert', role: 'alert', hidden: true });
}

export function clearErrors(form) {
  for (const error of form.querySelectorAll('.field-error')) {
    error.hidden = true;
    error.textContent = '';
  }
  for (const invalid of form.querySelectorAll('[aria-invalid]')) invalid.removeAttribute('aria-invalid');
  const alert = form.querySelector('.form-alert');
  if (alert) {
    alert.hidden = true;
    alert.textContent = '';
  }
}

/** Shows `message` beside the field called `name` (or only in the form's alert). */
export function showError(form, name, message) {
  const container = name ? form.querySelector(`[data-field="${name}"]`) : null;
  if (container) {
    const error = container.querySelector('.field-error');
    error.textContent = message;
    error.hidden = false;
    for (const input of container.querySelectorAll('input, select, textarea')) {
      input.setAttribute('aria-invalid', 'true');
    }
    return;
  }
  const alert = form.querySelector('.form-alert');
  alert.textContent = message;
  alert.hidden = false;
}

/** Shows an error from the API on a form: next to its field when it names one. */
export function showApiError(form, error) {
  const { message, field: name } = friendly(error);
  showError(form, name, message);
  const target = name ? form.querySelector(`[data-field="${name}"] input, [data-field="${name}"] select`) : null;
  target?.focus();
}

/** A passing message in the corner, read out by screen readers. */
export function toast(message, kind = 'info') {
  const box = document.getElementById('toasts');
  const item = h('div', { class: `toast ${kind}` }, message);
  box.append(item);
  setTimeout(() => item.remove(), kind === 'error' ? 8000 : 4000);
}

export function toastError(error) {
  toast(friendly(error).message, 'error');
}

/** A modal question; resolves to true when confirmed. Escape or Cancel say no. */
export function confirmDialog({ title, body, confirmLabel, danger = false }) {
  return new Promise((resolve) => {
    const titleId = uniqueId('dialog-title');
    const cancel = h('button', { type: 'button', class: 'button secondary', value: 'cancel' }, 'Cancel');
    const confirm = h('button', { type: 'button', class: `button ${danger ? 'danger' : 'primary'}` }, confirmLabel);
    const dialog = h('dialog', { class: 'dialog', 'aria-labelledby': titleId },
      h('h2', { id: titleId }, title),
      h('p', {}, body),
      h('div', { class: 'dialog-actions' }, cancel, confirm));
    let answer = false;
    cancel.addEventListener('click', () => dialog.close());
    confirm.addEventListener('click', () => { answer = true; dialog.close(); });
    dialog.addEventListener('close', () => { dialog.remove(); resolve(answer); });
    document.body.append(dialog);
    dialog.showModal();
    cancel.focus();
  });
}

/** Runs `action` with the button disabled and marked busy, so it cannot be sent twice. */
export async function busy(button, action) {
  button.disabled = true;
  button.setAttribute('aria-busy', 'true');
  try {
    return await action();
  } finally {
    button.disabled = false;
    button.removeAttribute('aria-busy');
  }
}

const DATE_TIME = new Intl.DateTimeFormat(undefined, { dateStyle: 'medium', timeStyle: 'medium' });
const DATE = new Intl.DateTimeFormat(undefined, { dateStyle: 'medium' });

export function formatDateTime(iso) {
  return iso ? DATE_TIME.format(new Date(iso)) : '—';
}

export function formatDate(iso) {
  return iso ? DATE.format(new Date(iso)) : '—';
}

/** `<time>` with the exact date as its title. */
export function timeElement(iso, text = formatDateTime(iso)) {
  return h('time', { datetime: iso, title: formatDateTime(iso) }, text);
}

/** Copies `text`; true when it worked. Falls back to a hidden text area where the API is absent. */
export async function copyText(text) {
  try {
    await navigator.clipboard.writeText(text);
    return true;
  } catch {
    const area = h('textarea', { class: 'visually-hidden', readonly: true }, text);
    document.body.append(area);
    area.select();
    const copied = document.execCommand('copy');
    area.remove();
    return copied;
  }
}

/** A status pill. `kind`: ok, warn, danger, muted, info. */
export function badge(text, kind) {
  return h('span', { class: `badge ${kind}` }, text);
}
