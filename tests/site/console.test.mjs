// The admin console in a real headless Chromium against the real portal: Azurite, funchost
// with its development identity provider (HTTPS sign-in: the browser ignores certificate
// errors, the page's code path is the one Entra ID gets), the handler in dry-run mode.
// Run from the repository root after `cargo build --workspace --bins` and `npm ci`:
//
//     node --test tests/site/console.test.mjs
//
// Screenshots go to target/site-artifacts/. No request may leave 127.0.0.1.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join } from 'node:path';

import { chromium } from 'playwright-core';

import { ARTIFACTS, CHROMIUM, CHROMIUM_ARGS, DEV_APP, DEV_TENANT, TEST_POLICY, showRequest, startPortal } from './harness.mjs';
import { toCsv } from '../../site/assets/console-data.js';

const AXE = createRequire(import.meta.url).resolve('axe-core/axe.min.js');
/** Short-lived tokens, to see one expire during a session. (MSAL.js also renews a token
 * that expires within 5 minutes before using it.) */
const TOKEN_LIFETIME = 10;

let portal;
let browser;
const external = [];
const ids = {};

/** The policy under which an approved fabrikam request can no longer be invited. */
const NARROWED = {
  ...TEST_POLICY,
  rules: TEST_POLICY.rules.map((rule) =>
    rule.domains.includes('fabrikam.com') ? { ...rule, access: ['sales-extranet'] } : rule,
  ),
};

async function signUp(email, displayName) {
  const response = await fetch(`${portal.url}/api/signup`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ email, displayName, acceptTerms: TEST_POLICY.terms.version }),
  });
  const text = await response.text();
  assert.equal(response.status, 202, text);
  return JSON.parse(text).requestId;
}

/** An administrator's token from the provider's plain door (as the command line gets one). */
async function adminToken() {
  const response = await fetch(`${portal.url}/.dev-identity/${DEV_TENANT}/oauth2/v2.0/token`, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    body: `grant_type=client_credentials&scope=${encodeURIComponent(`api://${DEV_APP}/.default`)}`,
  });
  return (await response.json()).access_token;
}

async function waitForStatus(id, status, timeoutMs = 20_000) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const row = showRequest(portal, id);
    if (row.status === status) return row;
    if (Date.now() > deadline) throw new Error(`${id} is ${row.status}, not ${status}`);
    await new Promise((done) => setTimeout(done, 250));
  }
}

before(async () => {
  mkdirSync(ARTIFACTS, { recursive: true });
  const [started, launched] = await Promise.allSettled([
    startPortal({ identity: { tokenLifetime: TOKEN_LIFETIME } }),
    chromium.launch({ executablePath: CHROMIUM, headless: true, args: CHROMIUM_ARGS, timeout: 30_000 }),
  ]);
  portal = started.value;
  browser = launched.value;
  for (const outcome of [started, launched]) if (outcome.status === 'rejected') throw outcome.reason;

  ids.approve = await signUp('ada@fabrikam.com', 'Ada Lovelace');
  ids.deny = await signUp('bob@fabrikam.com', 'Bob Builder');
  ids.failed = await signUp('carol@fabrikam.com', 'Carol Shannon');
  ids.invited = await signUp('dan@contoso.com', 'Dan Contoso');
  // Carol's request fails: approved after the policy stopped allowing its access, then
  // the policy is put back, so a retry can invite her.
  await portal.restart({ policy: NARROWED });
  const approved = await fetch(`${portal.url}/api/requests/${ids.failed}/approve`, {
    method: 'POST',
    headers: { authorization: `Bearer ${await adminToken()}`, 'content-type': 'application/json' },
    body: '{}',
  });
  assert.equal(approved.status, 200, await approved.text());
  await waitForStatus(ids.failed, 'Failed');
  await portal.restart({ policy: TEST_POLICY });
});

after(async () => {
  await browser?.close();
  await portal?.stop();
});

/** A page in a fresh context (its own session storage) whose requests stay on 127.0.0.1. */
async function newPage(options = {}) {
  const context = await browser.newContext({ locale: 'en-GB', ignoreHTTPSErrors: true, ...options });
  context.setDefaultTimeout(15_000);
  await context.route('**/*', (route) => {
    const url = new URL(route.request().url());
    if (url.hostname === '127.0.0.1') return route.continue();
    external.push(url.href);
    return route.abort();
  });
  const page = await context.newPage();
  page.on('pageerror', (error) => console.error('page error:', error.message));
  page.on('console', (message) => {
    if (message.type() === 'error') console.error('page console:', message.text());
  });
  return page;
}

/** Opens the console at `hash`, signs in as `user` on the provider's page, waits for `ready`. */
async function signIn(page, user = 'admin', hash = '#/pending', ready = '#view-pending:not([hidden])') {
  await page.goto(`${portal.url}/console/${hash}`);
  await page.locator('#sign-in').click();
  await page.waitForURL(/\/oauth2\/v2\.0\/authorize/);
  await page.locator(`#user-${user}`).click();
  await page.locator(ready).first().waitFor();
}

async function assertAccessible(page, what) {
  await page.evaluate(readFileSync(AXE, 'utf8'));
  const result = await page.evaluate(() => window.axe.run(document, { resultTypes: ['violations'] }));
  const serious = result.violations.filter((v) => ['serious', 'critical'].includes(v.impact));
  assert.deepEqual(
    serious.map((v) => `${v.id}: ${v.nodes.map((n) => n.target.join(' ')).join(', ')}`),
    [],
    `${what}: axe-core violations`,
  );
}

const row = (page, table, id) => page.locator(`#${table} tr[data-id="${id}"]`);

test('the administrator signs in and approves a fabrikam request with a reason; it reaches Invited', async () => {
  const page = await newPage();
  const started = Date.now();
  await signIn(page);
  const pending = row(page, 'pending-table', ids.approve);
  await pending.waitFor();
  console.log(`pending list shown ${Date.now() - started} ms after opening the console (sign-in included)`);
  await assert.doesNotReject(row(page, 'pending-table', ids.deny).waitFor());
  assert.match(await page.locator('#who').textContent(), /local-admin@b2b-signup\.invalid/);
  // Oldest first; Carol (Failed) is not waiting.
  const order = await page.locator('#pending-table tbody tr').evaluateAll((rows) => rows.map((r) => r.dataset.id));
  assert.deepEqual(order, [ids.approve, ids.deny]);
  await page.screenshot({ path: join(ARTIFACTS, 'console-pending.png'), fullPage: true });
  await assertAccessible(page, 'pending list');

  await pending.locator('button[data-action="approve"]').click();
  const dialog = page.locator('#confirm');
  await dialog.waitFor();
  assert.equal(
    await page.locator('#confirm-question').textContent(),
    'Approve Ada Lovelace (ada@fabrikam.com) for Partner portal?',
  );
  await page.locator('#confirm-reason').fill('Known partner, contract 42');
  await page.screenshot({ path: join(ARTIFACTS, 'console-confirm.png') });
  await page.locator('#confirm-ok').click();
  await pending.locator('.row-status', { hasText: /Queued|Inviting|Invited/ }).waitFor();

  // Its detail follows the worker until Invited (dry run), the reason in its history.
  await pending.locator('a').click();
  await page.locator('#detail-fields [data-field="status"] dd', { hasText: 'Invited' }).waitFor({ timeout: 20_000 });
  const history = await page.locator('#history-table tbody').textContent();
  assert.match(history, /Known partner, contract 42/);
  assert.match(history, /local-admin@b2b-signup\.invalid/);
  await page.screenshot({ path: join(ARTIFACTS, 'console-detail.png'), fullPage: true });
  const stored = showRequest(portal, ids.approve);
  assert.equal(stored.status, 'Invited');
  assert.equal(stored.dryRun, true);
  assert.equal(stored.decisionReason, 'Known partner, contract 42');
  await page.context().close();
});

test('deny needs a reason and records it; a Failed request is retried', async () => {
  const page = await newPage();
  await signIn(page, 'admin', `#/requests/${ids.deny}`, '#view-detail:not([hidden]) #detail-actions button');
  await page.locator('#detail-actions button[data-action="deny"]').click();
  assert.equal(
    await page.locator('#confirm-question').textContent(),
    'Deny Bob Builder (bob@fabrikam.com) access to Partner portal?',
  );
  await page.locator('#confirm-ok').click();
  assert.equal(await page.locator('#confirm-error').isVisible(), true, 'no reason: refused in the page');
  assert.equal(await page.evaluate(() => document.activeElement.id), 'confirm-reason');
  await page.locator('#confirm-reason').fill('Not a partner of ours');
  await page.locator('#confirm-ok').click();
  await page.locator('#detail-fields [data-field="status"] dd', { hasText: 'Denied' }).waitFor();
  assert.match(await page.locator('#history-table tbody').textContent(), /Not a partner of ours/);
  assert.equal(showRequest(portal, ids.deny).status, 'Denied');

  await page.goto(`${portal.url}/console/#/requests/${ids.failed}`);
  await page.locator('#detail-fields [data-field="status"] dd', { hasText: 'Failed' }).waitFor();
  await page.locator('#detail-actions button[data-action="retry"]').click();
  await page.locator('#confirm-ok').click();
  await page.locator('#detail-fields [data-field="status"] dd', { hasText: 'Invited' }).waitFor({ timeout: 20_000 });
  assert.equal(showRequest(portal, ids.failed).retriedBy, 'local-admin@b2b-signup.invalid');
  await page.context().close();
});

test('a reader sees and exports the requests but cannot decide; a user with no role sees the no-access page and signs out', async () => {
  const reader = await newPage();
  await signIn(reader, 'reader', '#/requests?status=&domain=&since=30d', '#view-list:not([hidden]) #list-table tbody tr');
  assert.equal(await reader.locator('#readonly').isVisible(), true);
  // The export: every request of the filter, as CSV, downloaded from the page.
  const [download] = await Promise.all([reader.waitForEvent('download'), reader.locator('#export').click()]);
  const csv = readFileSync(await download.path(), 'utf8').trim().split('\r\n');
  assert.equal(csv[0].split(',')[0], 'requestId');
  assert.equal(csv.length - 1, await reader.locator('#list-table tbody tr').count());
  const stored = showRequest(portal, ids.deny);
  const expected = `${ids.deny},${stored.status},bob@fabrikam.com,Bob Builder,fabrikam.com,partner-portal,`;
  assert.ok(csv.some((line) => line.startsWith(expected)), csv.join('\n'));
  await reader.goto(`${portal.url}/console/#/requests/${ids.failed}`);
  await reader.locator('#detail-fields [data-field="status"] dd').waitFor();
  assert.equal(await reader.locator('#detail-actions button').count(), 0);
  await reader.context().close();

  const nobody = await newPage();
  await signIn(nobody, 'no-role', '#/pending', '#view-noaccess:not([hidden])');
  assert.match(await nobody.locator('#noaccess-text').textContent(), /local-no-role@b2b-signup\.invalid/);
  assert.equal(await nobody.locator('#sections').isVisible(), false);
  await nobody.screenshot({ path: join(ARTIFACTS, 'console-no-access.png') });
  await assertAccessible(nobody, 'no-access page');
  // Signing out goes through the provider's end-session endpoint and back to the sign-in.
  await nobody.locator('#sign-out').click();
  await nobody.locator('#view-signin:not([hidden])').waitFor();
  assert.equal(await nobody.locator('#who').isVisible(), false);
  await nobody.context().close();
});

test('the token expires during the session and the page renews it with its refresh token', async () => {
  const page = await newPage();
  await signIn(page);
  const before = (portal.output().match(/grant="refresh_token"/g) || []).length;
  // Past the token's life: the next call needs a new one.
  await new Promise((done) => setTimeout(done, (TOKEN_LIFETIME + 2) * 1000));
  await page.locator('#sections a[data-view="list"]').click();
  await page.locator('#list-table tbody tr').first().waitFor();
  const renewed = (portal.output().match(/grant="refresh_token"/g) || []).length;
  assert.ok(renewed > before, 'a refresh-token grant was made');
  assert.equal(await page.locator('#alert').isVisible(), false);
  await page.context().close();
});

test('keyboard only: sign in, approve, filter, overview, in French at 390 px', async () => {
  const erin = await signUp('erin@fabrikam.com', 'Erin Keyboard');
  const page = await newPage({ locale: 'fr-FR', viewport: { width: 390, height: 844 } });
  await page.goto(`${portal.url}/fr/console/`);
  await page.locator('#sign-in').focus();
  await page.keyboard.press('Enter');
  await page.waitForURL(/authorize/);
  await page.locator('#user-admin').focus();
  await page.keyboard.press('Enter');
  await page.locator('#view-pending:not([hidden])').waitFor();
  assert.equal(await page.locator('#sign-in').isVisible(), false);
  // Approve with the keyboard: the dialog takes the focus, Tab reaches Confirm.
  const waiting = row(page, 'pending-table', erin);
  await waiting.locator('button[data-action="approve"]').focus();
  await page.keyboard.press('Enter');
  await page.locator('#confirm[open]').waitFor();
  assert.equal(await page.evaluate(() => document.activeElement.id), 'confirm-reason');
  await page.keyboard.type('Approuvé au clavier');
  await page.keyboard.press('Tab');
  assert.equal(await page.evaluate(() => document.activeElement.id), 'confirm-ok');
  await page.keyboard.press('Enter');
  await waiting.locator('.row-status', { hasText: /Queued|Inviting|Invited/ }).waitFor();
  assert.equal(await page.locator('#confirm[open]').count(), 0, 'the dialog closed');
  // The sections are links in the tab order; Enter on "Toutes les demandes" opens the list.
  await page.locator('#sections a[data-view="list"]').focus();
  await page.keyboard.press('Enter');
  await page.locator('#view-list:not([hidden]) #list-table tbody tr').first().waitFor();
  assert.equal(await page.evaluate(() => document.activeElement.id), 'list-heading');
  await page.locator('#filter-domain').focus();
  await page.keyboard.type('contoso.com');
  await page.keyboard.press('Enter');
  await page.waitForFunction(() => window.location.hash.includes('domain=contoso.com'));
  await page.locator('#list-table tbody tr').first().waitFor();
  assert.equal(await page.locator('#list-table tbody tr').count(), 1);
  const scrollWidth = await page.evaluate(() => document.documentElement.scrollWidth);
  assert.ok(scrollWidth <= 390, `no sideways scrolling at 390 px (${scrollWidth})`);
  await page.screenshot({ path: join(ARTIFACTS, 'console-390-fr.png'), fullPage: true });
  await assertAccessible(page, 'list, French, 390 px');

  await page.locator('#sections a[data-view="overview"]').focus();
  await page.keyboard.press('Enter');
  await page.locator('#chart svg rect').first().waitFor();
  assert.equal(await page.locator('#figure-total').textContent(), '5');
  assert.match(await page.locator('#top-domains').textContent(), /fabrikam\.com — 4/);
  await page.screenshot({ path: join(ARTIFACTS, 'console-overview.png'), fullPage: true });
  await assertAccessible(page, 'overview');
  await page.context().close();
});

test('the CSV export quotes as RFC 4180 and defuses spreadsheet formulas', () => {
  const csv = toCsv([{ requestId: 'R', displayName: '=HYPERLINK("x")', justification: 'a,b\nc' }]);
  const [, line] = csv.split('\r\n');
  assert.equal(line, `R,,,"'=HYPERLINK(""x"")",,,,"a,b\nc",,,,,,,`);
});

test('the page is served with a policy that allows only the identity provider besides itself', async () => {
  const response = await fetch(`${portal.url}/console/`);
  const policy = response.headers.get('content-security-policy');
  const origin = new URL(portal.authority).origin;
  assert.match(policy, new RegExp(`connect-src 'self' ${origin.replace(/[.]/g, '\\.')};`));
  assert.doesNotMatch(policy, /login\.microsoftonline|https:\/\/(?!127\.0\.0\.1)/);
});

test('nothing was requested outside 127.0.0.1', () => {
  assert.deepEqual(external, []);
});
