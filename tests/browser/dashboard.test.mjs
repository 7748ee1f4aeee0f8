// The dashboard in a real browser (Debian's Chromium through Playwright) against a real
// Linkkit: sign in, Add Endpoint with its validation, create a link, visit it, watch the
// delivery arrive in the endpoint's log, make the receiver fail, resend, see the failed attempt.
// Screenshots of the main pages go to LINKKIT_SCREENSHOTS (docs/screenshots with
// `scripts/browser-test.sh --update-screenshots`).

import assert from 'node:assert/strict';
import { mkdirSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { createWorkspace, eventually, launchChromium, startLinkkit, startReceiver } from './harness.mjs';

const SHOTS = process.env.LINKKIT_SCREENSHOTS ?? join(tmpdir(), 'linkkit-screenshots');
const IPHONE = 'Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.4 Mobile/15E148 Safari/604.1';
const DESKTOP = { width: 1280, height: 860 };
const PHONE = { width: 390, height: 844 };
const WAIT = { timeout: 30000 };

describe('the dashboard', () => {
  let linkkit;
  let workspace;
  let receiver;
  let context;
  let page;
  let endpointPath;
  const pageErrors = [];

  const go = (path) => page.goto(`${linkkit.apiUrl}${path}`);
  const shot = async (name) => {
    await page.locator('#toasts').evaluate((toasts) => toasts.replaceChildren());
    await page.screenshot({ path: join(SHOTS, `${name}.png`), fullPage: true });
  };
  const heading = () => page.getByRole('heading', { level: 1 });

  before(async () => {
    mkdirSync(SHOTS, { recursive: true });
    linkkit = await startLinkkit();
    workspace = createWorkspace(linkkit, 'Acme');
    receiver = await startReceiver();
    context = await launchChromium({ viewport: DESKTOP, locale: 'en-GB', timezoneId: 'UTC' });
    await context.grantPermissions(['clipboard-read', 'clipboard-write'], { origin: linkkit.apiUrl });
    page = context.pages()[0] ?? await context.newPage();
    page.setDefaultTimeout(15000);
    page.on('pageerror', (error) => pageErrors.push(error.message));
    page.on('console', (message) => { if (message.type() === 'error' && !/Failed to load resource/.test(message.text())) pageErrors.push(message.text()); });
  });

  after(async () => {
    await context?.close();
    await receiver?.stop();
    await linkkit?.stop();
  });

  test('sign-in refuses a wrong key and signs in with the right one', async () => {
    await go('/');
    await page.waitForURL('**/dashboard/sign-in?next=*');
    await assert.doesNotReject(heading().filter({ hasText: 'Sign in' }).waitFor());
    await shot('sign-in');

    await page.getByRole('button', { name: 'Sign in' }).click();
    await page.getByText('Enter your API key.').waitFor();

    await page.getByLabel('API key').fill('lk_this_is_not_a_key');
    await page.getByRole('button', { name: 'Sign in' }).click();
    await page.getByText('That API key is not valid').waitFor();

    // Keyboard only: type the key, press Enter.
    await page.getByLabel('API key').fill(workspace.api_key);
    await page.getByLabel('API key').press('Enter');
    await page.waitForURL('**/dashboard/links');
    await heading().filter({ hasText: 'Links' }).waitFor();
    await page.getByText('Acme').waitFor();

    const [cookie] = (await context.cookies()).filter((c) => c.name === 'linkkit_session');
    assert.ok(cookie, 'the session cookie is set');
    assert.equal(cookie.httpOnly, true);
    assert.equal(cookie.sameSite, 'Strict');
    assert.equal(await page.evaluate(() => document.cookie.includes('linkkit_session')), false,
      'scripts cannot read the session cookie');
  });

  test('Add Endpoint shows what is wrong: no events, a URL that cannot receive webhooks', async () => {
    await page.getByRole('navigation', { name: 'Main' }).getByRole('link', { name: 'Settings' }).click();
    await heading().filter({ hasText: 'Webhooks' }).waitFor();
    await page.getByText('No endpoints yet').waitFor();
    await page.getByRole('link', { name: 'Add Endpoint' }).first().click();
    await heading().filter({ hasText: 'Add Endpoint' }).waitFor();

    const form = page.getByRole('form', { name: 'Add Endpoint' });
    await form.getByRole('button', { name: 'Add Endpoint' }).click();
    await form.getByText('Enter the URL that should receive the webhooks.').waitFor();
    await form.getByText('Choose at least one event to send to this endpoint.').waitFor();

    await page.getByLabel('Endpoint URL').fill(receiver.url);
    await form.getByRole('button', { name: 'Add Endpoint' }).click();
    await form.getByText('Choose at least one event to send to this endpoint.').waitFor();
    assert.equal(await page.getByText('Enter the URL that should receive the webhooks.').count(), 0);

    // The API's 422, next to the field it is about.
    await page.getByLabel('Endpoint URL').fill('ftp://example.com/webhooks');
    await page.getByRole('checkbox', { name: /link\.clicked/ }).check();
    await form.getByRole('button', { name: 'Add Endpoint' }).click();
    const urlError = page.locator('[data-field="url"] .field-error');
    await urlError.filter({ hasText: 'This URL cannot receive webhooks' }).waitFor();
    assert.match(await urlError.textContent(), /only http and https/i);
    assert.equal(await page.getByLabel('Endpoint URL').getAttribute('aria-invalid'), 'true');

    await page.getByLabel('Endpoint URL').fill('not a url');
    await form.getByRole('button', { name: 'Add Endpoint' }).click();
    await urlError.filter({ hasText: 'not a valid absolute URL' }).waitFor();
    await shot('add-endpoint-error');
    assert.equal(await page.evaluate(() => location.pathname), '/dashboard/settings/webhooks/new');
  });

  test('an endpoint added through the form is listed, with its secret and a test event', async () => {
    await page.getByLabel('Endpoint URL').fill(receiver.url);
    await page.getByLabel('Description').fill('Order system');
    // The keyboard reaches the event checkboxes and Space ticks them.
    await page.keyboard.press('Tab');
    await page.keyboard.press('Tab');
    assert.equal(await page.evaluate(() => document.activeElement.value), 'link.created');
    await page.keyboard.press('Space');
    assert.equal(await page.getByRole('checkbox', { name: /link\.created/ }).isChecked(), true);
    await page.getByRole('form', { name: 'Add Endpoint' }).getByRole('button', { name: 'Add Endpoint' }).click();
    await page.waitForURL(/\/dashboard\/settings\/webhooks\/ep_[0-9a-f]{32}$/);
    endpointPath = new URL(page.url()).pathname;
    await heading().filter({ hasText: receiver.url }).waitFor();
    await page.getByText('Enabled', { exact: true }).first().waitFor();

    await page.getByRole('button', { name: 'Reveal' }).click();
    await page.locator('.secret').filter({ hasText: /^whsec_[A-Za-z0-9+/=]{30,}$/ }).waitFor();
    await page.getByRole('button', { name: 'Hide' }).click();

    await page.getByLabel('Event type').selectOption('qr.scanned');
    await page.getByRole('button', { name: 'Send test event' }).click();
    await page.locator('details.delivery', { hasText: 'qr.scanned' }).getByText('Succeeded').waitFor(WAIT);
    assert.equal(receiver.ofType('qr.scanned').length, 1, 'the test event reached the receiver');

    await page.getByRole('navigation', { name: 'Breadcrumb' }).getByRole('link', { name: 'Webhooks' }).click();
    const item = page.locator('.endpoint-item', { hasText: receiver.url });
    await item.getByText('Enabled').waitFor();
    await item.getByText('100%').waitFor();
    await item.getByText('Order system').waitFor();
  });

  test('a link created in the dashboard can be copied and its QR code downloaded; its click reaches the endpoint', async () => {
    await page.getByRole('navigation', { name: 'Main' }).getByRole('link', { name: 'Links' }).click();
    await page.getByRole('link', { name: 'Create your first link' }).waitFor();
    await page.getByRole('link', { name: 'Create link' }).first().click();
    await heading().filter({ hasText: 'Create link' }).waitFor();

    await page.getByRole('button', { name: 'Create link' }).click();
    await page.getByText('Enter the address the short link should lead to.').waitFor();

    await page.getByLabel('Destination URL').fill('https://example.com/product');
    await page.getByLabel('Slug').fill('summer-sale');
    await page.getByLabel('Segment').fill('Black Friday 2026');
    await page.getByLabel('Campaign').fill('Q4 Sales');
    await page.getByLabel('Tags').fill('email, launch');
    await page.getByRole('button', { name: 'Create link' }).click();
    await page.waitForURL('**/dashboard/links?highlight=*');
    const row = page.locator('tr', { hasText: '/summer-sale' });
    await row.getByText('Segment: Black Friday 2026 · Campaign: Q4 Sales').waitFor();
    await row.getByText('launch').waitFor();
    const shortUrl = `${linkkit.redirectUrl}/summer-sale`;

    await row.getByRole('button', { name: /^Copy/ }).click();
    await page.getByText(`Copied ${shortUrl}`).waitFor();
    assert.equal(await page.evaluate(() => navigator.clipboard.readText()), shortUrl);

    // The QR code downloads as a PNG named after the slug.
    const download = page.waitForEvent('download');
    await row.getByRole('button', { name: /QR code/ }).click();
    const qr = await download;
    assert.equal(qr.suggestedFilename(), 'summer-sale-qr.png');
    const png = readFileSync(await qr.path());
    assert.deepEqual([...png.subarray(1, 4)], [...Buffer.from('PNG')]);
    await page.getByText('Downloaded the QR code of /summer-sale').waitFor();

    // A second link, made through the API with the key, for a fuller page.
    const second = await fetch(`${linkkit.apiUrl}/api/v1/links`, {
      method: 'POST',
      headers: { authorization: `Bearer ${workspace.api_key}`, 'content-type': 'application/json' },
      body: JSON.stringify({ destination_url: 'https://example.com/launch/video?utm_source=newsletter', slug: 'launch-video', campaign: 'Product launch', tags: ['video'] }),
    });
    assert.equal(second.status, 201);

    const visit = await fetch(shortUrl, { redirect: 'manual', headers: { 'user-agent': IPHONE } });
    assert.equal(visit.status, 302);
    assert.equal(visit.headers.get('location'), 'https://example.com/product');
    await eventually('the click webhook', () => receiver.ofType('link.clicked').length === 1);
    const scan = await fetch(`${shortUrl}?qr=1`, { redirect: 'manual', headers: { 'user-agent': IPHONE } });
    assert.equal(scan.status, 302);
    // The visit counters are kept from the events; the list shows them after a reload.
    await eventually('the click and the scan counted on the links page', async () => {
      await page.reload();
      const clicks = await row.locator('td[data-label="Clicks"]').textContent();
      const scans = await row.locator('td[data-label="Scans"]').textContent();
      return clicks === '1' && scans === '1';
    });
    await shot('links');
  });

  test('the delivery of the click shows in the endpoint log with status 200', async () => {
    await go('/dashboard/settings/webhooks');
    await page.locator('.endpoint-item').getByText('of the last').waitFor();
    await shot('webhooks');

    await page.getByRole('link', { name: receiver.url, exact: true }).click();
    await page.waitForURL(`**${endpointPath}`);
    const delivery = page.locator('details.delivery', { hasText: 'link.clicked' });
    await delivery.getByText('Succeeded').waitFor(WAIT);
    await delivery.locator('summary').click();
    const firstAttempt = delivery.locator('tr.attempt').first();
    await firstAttempt.locator('.status-code').getByText('200').waitFor();
    await firstAttempt.getByText('ok, got it').waitFor();
    await page.mouse.move(0, 0);
    await shot('endpoint');
  });

  test('after the receiver starts failing, Resend shows the new failed attempt', async () => {
    receiver.status = 500;
    const delivery = page.locator('details.delivery', { hasText: 'link.clicked' });
    await delivery.getByRole('button', { name: /^Resend/ }).click();
    await page.getByText('Sending the link.clicked delivery again.').waitFor();
    // The page polls: the failed attempt appears without a reload.
    const failed = delivery.locator('tr.attempt').filter({ has: page.locator('.status-code', { hasText: '500' }) });
    await failed.first().waitFor(WAIT);
    await failed.first().getByText('receiver failing on purpose').waitFor();
    assert.ok(await delivery.locator('tr.attempt').count() >= 2, 'the 200 attempt is still listed');
    await delivery.locator('summary .badge').filter({ hasText: /Failed, retrying|Dead/ }).waitFor(WAIT);

    // The status filter narrows the log.
    await page.getByLabel('Status').selectOption('succeeded');
    await page.locator('details.delivery', { hasText: 'qr.scanned' }).waitFor();
    await page.locator('details.delivery', { hasText: 'link.clicked' }).waitFor({ state: 'detached' });
    await page.getByLabel('Status').selectOption('');
    await delivery.locator('summary').click();
    await delivery.locator('tr.attempt .status-code', { hasText: '200' }).waitFor();
    await delivery.locator('tr.attempt .status-code', { hasText: '500' }).first().waitFor();
    await page.mouse.move(0, 0);
    await shot('endpoint-failed');
    receiver.status = 200;
  });

  test('an endpoint can be disabled and enabled again', async () => {
    await page.getByRole('button', { name: 'Disable' }).click();
    await page.getByText('Why: disabled through the API').waitFor();
    await page.getByRole('button', { name: 'Enable' }).click();
    await page.getByRole('button', { name: 'Disable' }).waitFor();
  });

  test('a link can be edited, and deleted after confirming', async () => {
    await go('/dashboard/links/new');
    await page.getByLabel('Destination URL').fill('https://example.com/spring');
    await page.getByLabel('Slug').fill('spring');
    await page.getByRole('button', { name: 'Create link' }).click();
    const row = page.locator('tr', { hasText: '/spring' });
    await row.getByRole('link', { name: 'Edit spring' }).click();
    await heading().filter({ hasText: 'Edit /spring' }).waitFor();
    await page.getByLabel('Campaign').fill('Spring 2027');
    await page.getByLabel('Slug').fill('summer-sale');
    await page.getByRole('button', { name: 'Save changes' }).click();
    await page.locator('[data-field="slug"] .field-error').filter({ hasText: 'already taken' }).waitFor();
    await page.getByLabel('Slug').fill('spring');
    await page.getByRole('button', { name: 'Save changes' }).click();
    await row.getByText('Spring 2027').waitFor();

    await row.getByRole('button', { name: 'Delete spring' }).click();
    const dialog = page.getByRole('dialog', { name: 'Delete /spring?' });
    await dialog.waitFor();
    await page.keyboard.press('Escape');
    await dialog.waitFor({ state: 'detached' });
    await row.waitFor();
    await row.getByRole('button', { name: 'Delete spring' }).click();
    await dialog.getByRole('button', { name: 'Delete link' }).click();
    await row.waitFor({ state: 'detached' });
    await page.getByText('Deleted /spring').waitFor();
    assert.equal((await fetch(`${linkkit.redirectUrl}/spring`, { redirect: 'manual' })).status, 410);
  });

  test('every page fits a phone screen', async () => {
    await page.setViewportSize(PHONE);
    for (const [path, name] of [
      ['/dashboard/links', 'phone-links'],
      ['/dashboard/settings/webhooks', null],
      ['/dashboard/settings/webhooks/new', null],
      [endpointPath, 'phone-endpoint'],
      ['/dashboard/links/new', null],
    ]) {
      await go(path);
      await heading().waitFor();
      await page.waitForLoadState('networkidle');
      const [scrollWidth, innerWidth] = await page.evaluate(() => [document.documentElement.scrollWidth, window.innerWidth]);
      assert.ok(scrollWidth <= innerWidth, `${path} is ${scrollWidth}px wide on a ${innerWidth}px screen`);
      if (name) {
        if (path === endpointPath) await page.locator('details.delivery', { hasText: 'link.clicked' }).locator('summary').click();
        await page.locator('tr.attempt').first().or(page.locator('tr[data-link-id]').first()).waitFor();
        await shot(name);
      }
    }
    await page.setViewportSize(DESKTOP);
  });

  test('signing out ends the session', async () => {
    await go('/dashboard/links');
    await page.getByRole('button', { name: 'Sign out' }).click();
    await page.getByText('You are signed out.').waitFor();
    const status = await page.evaluate(async () => (await fetch('/api/v1/session', { headers: { 'X-Linkkit-Dashboard': '1' } })).status);
    assert.equal(status, 401);
    await go('/dashboard/settings/webhooks');
    await page.waitForURL('**/dashboard/sign-in?next=*');
    assert.deepEqual(pageErrors, [], 'no script errors on any page');
  });
});
