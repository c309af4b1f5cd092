// Proof of address in a real headless Chromium against the real portal, with the local
// host's mail catcher (`funchost --dev-mail`) standing in for Azure Communication Services:
// sign up → "check your mail" → open the caught mail's link → one click → invited (dry run)
// or waiting for approval; a mail scanner's GET of the link changes nothing; French end to
// end. Run after `cargo build --workspace --bins`: node --test tests/site/verify.test.mjs
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { mkdirSync } from 'node:fs';

import { chromium } from 'playwright-core';

import { ARTIFACTS, TEST_POLICY, localPage, showRequest, startWithBrowser, stopBoth } from './harness.mjs';

const ULID = /[0-9A-HJKMNP-TV-Z]{26}/;
// The test policy with proof of address on (its default).
const { verifyEmail: _off, ...VERIFYING } = TEST_POLICY;

let portal;
let browser;
const external = [];

before(async () => {
  mkdirSync(ARTIFACTS, { recursive: true });
  ({ portal, browser } = await startWithBrowser(chromium, {
    policy: VERIFYING,
    devMail: true,
    // Named on the page (config.json) and in every mail.
    env: { SIGNUP_ORG_NAME: 'Contoso Ltd' },
  }));
});

after(() => stopBoth({ portal, browser }));

const newPage = (options) => localPage(browser, external, options);

/** Signs up on the page at `path` and returns the request id the page shows. */
async function signUp(page, email, path = '/') {
  await page.goto(`${portal.url}${path}`);
  await page.locator('#access-field').waitFor({ state: 'visible' });
  await page.fill('#email', email);
  await page.fill('#displayName', 'Ada Lovelace');
  await page.check('#acceptTerms');
  await page.click('button[type="submit"]');
  const status = page.locator('#status');
  await status.filter({ hasText: ULID }).waitFor();
  const text = await status.textContent();
  return { id: text.match(ULID)[0], text };
}

/** The newest caught mail to `address` (bounded polling of the catcher). */
async function mailTo(address, count = 1) {
  for (const deadline = Date.now() + 10_000; Date.now() < deadline; ) {
    const mails = await (await fetch(`${portal.url}/.dev-mail/messages.json`)).json();
    const mine = mails.filter((m) => m.to === address);
    if (mine.length >= count) return mine[mine.length - 1];
    await new Promise((done) => setTimeout(done, 200));
  }
  throw new Error(`no mail to ${address}:\n${portal.output()}`);
}

const linkIn = (mail) => mail.text.match(/http:\/\/127\.0\.0\.1:\d+\/\S*verify\.html#t=\S+/)[0];

async function waitForStatus(id, wanted) {
  let row;
  for (const deadline = Date.now() + 15_000; Date.now() < deadline; ) {
    row = showRequest(portal, id);
    if (row.status === wanted) return row;
    await new Promise((done) => setTimeout(done, 250));
  }
  assert.equal(row.status, wanted, JSON.stringify(row));
  return row;
}

test('sign up, check your mail, one click on the link, invited (dry run)', async () => {
  const page = await newPage();
  const { id, text } = await signUp(page, 'ada@contoso.com');
  assert.equal(await page.textContent('#inviter'), 'You are asking Contoso Ltd for guest access to its applications.');
  assert.match(text, /Check your mail/);
  assert.equal(showRequest(portal, id).status, 'PendingVerification');

  const mail = await mailTo('ada@contoso.com');
  assert.equal(mail.subject, 'Confirm your e-mail address for Contoso Ltd');
  const link = linkIn(mail);

  // A mail scanner follows the link: a GET of the page, which changes nothing.
  const scanned = await fetch(link);
  assert.equal(scanned.status, 200);
  await scanned.text();
  await new Promise((done) => setTimeout(done, 500));
  assert.equal(showRequest(portal, id).status, 'PendingVerification', 'a GET verifies nothing');

  // The partner opens it and presses the one button.
  const partner = await newPage();
  await partner.goto(link);
  await partner.click('#confirm');
  const status = partner.locator('#status');
  await status.filter({ hasText: 'confirmed' }).waitFor();
  assert.match(await status.textContent(), /invitation comes from Microsoft/);
  await partner.screenshot({ path: join(ARTIFACTS, 'verify-done.png'), fullPage: true });
  const row = await waitForStatus(id, 'Invited');
  assert.equal(row.dryRun, true);
  assert.ok(row.history.some((entry) => entry.action === 'verified' && entry.actor === 'partner'));

  // The same link again: already done.
  const again = await newPage();
  await again.goto(link);
  await again.click('#confirm');
  await again.locator('#status').filter({ hasText: 'already confirmed' }).waitFor();
});

test('an approval rule waits for an administrator after the click', async () => {
  const page = await newPage();
  const { id } = await signUp(page, 'grace@fabrikam.com');
  const partner = await newPage();
  await partner.goto(linkIn(await mailTo('grace@fabrikam.com')));
  await partner.click('#confirm');
  await partner.locator('#status').filter({ hasText: 'approval' }).waitFor();
  await waitForStatus(id, 'PendingApproval');
});

test('a bad or missing token gets a clear message and changes nothing', async () => {
  const page = await newPage();
  await page.goto(`${portal.url}/verify.html#t=01ARZ3NDEKTSV4RRFFQ69G5FAV.nope.contoso.com`);
  await page.click('#confirm');
  await page.locator('#status').filter({ hasText: 'not valid' }).waitFor();

  const missing = await newPage();
  await missing.goto(`${portal.url}/verify.html`);
  await missing.locator('#status').filter({ hasText: 'needs the link' }).waitFor();
  assert.equal(await missing.isHidden('#verify'), true);
});

test('French end to end: the French page, a French mail, a French verify page', async () => {
  const page = await newPage({ locale: 'fr-FR' });
  const { id, text } = await signUp(page, 'marie@contoso.com', '/fr/');
  assert.match(text, /Consultez votre messagerie/);
  const mail = await mailTo('marie@contoso.com');
  assert.match(mail.subject, /Confirmez votre adresse e-mail/);
  const link = linkIn(mail);
  assert.match(link, /\/fr\/verify\.html#t=/);
  const partner = await newPage({ locale: 'fr-FR' });
  await partner.goto(link);
  assert.equal(await partner.textContent('#confirm'), 'Confirmer mon adresse');
  await partner.click('#confirm');
  await partner.locator('#status').filter({ hasText: 'confirmée' }).waitFor();
  await waitForStatus(id, 'Invited');
});

test('no request left 127.0.0.1', () => {
  assert.deepEqual(external, []);
});
