// The sign-up page in a real headless Chromium (Debian's package, driven by playwright-core)
// against the real portal: Azurite, the local host runner serving site/ and the API, the
// handler in dry-run mode. Run from the repository root after `cargo build --bins` and
// `npm ci`:
//
//     node --test tests/site/
//
// Screenshots go to target/site-artifacts/. No request may leave 127.0.0.1: every other
// address is aborted and recorded, and the last test asserts there were none.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join } from 'node:path';

import { chromium } from 'playwright-core';

import { createServer } from 'node:http';

import { ARTIFACTS, TEST_POLICY, localPage, showRequest, startPortal, startWithBrowser, stopBoth } from './harness.mjs';
import { ERROR_CODES, STRINGS } from '../../site/assets/i18n.js';
import { render } from '../../scripts/site/build.mjs';

const AXE = createRequire(import.meta.url).resolve('axe-core/axe.min.js');
const ULID = /[0-9A-HJKMNP-TV-Z]{26}/;

let portal;
let browser;
const external = [];

before(async () => {
  mkdirSync(ARTIFACTS, { recursive: true });
  ({ portal, browser } = await startWithBrowser(chromium));
});

after(() => stopBoth({ portal, browser }));

/** A page in a fresh context whose requests may go to 127.0.0.1 only. */
const newPage = (options) => localPage(browser, external, options);

const focusedId = (page) => page.evaluate(() => document.activeElement?.id ?? null);

/** The page with the access options and terms from config.json in place. */
async function openForm(page, path = '/') {
  await page.goto(`${portal.url}${path}`);
  await page.locator('#access-field').waitFor({ state: 'visible' });
}

async function fill(page, { email, name = 'Ada Lovelace', terms = true }) {
  await page.fill('#email', email);
  await page.fill('#displayName', name);
  if (terms) await page.check('#acceptTerms');
}

/** axe-core in the page: no serious or critical violation. Evaluated through the
 * DevTools protocol, so the page's Content-Security-Policy stays as served. */
async function assertAccessible(page, what) {
  await page.evaluate(readFileSync(AXE, 'utf8'));
  const results = await page.evaluate(() => window.axe.run(document, { resultTypes: ['violations'] }));
  const bad = results.violations.filter((v) => v.impact === 'serious' || v.impact === 'critical');
  assert.deepEqual(
    bad.map((v) => `${v.id} (${v.impact}): ${v.nodes.map((n) => n.target.join(' ')).join(', ')}`),
    [],
    `${what}: accessibility violations`,
  );
}

test('the checked-in pages are up to date with their templates and the dictionary', async () => {
  for (const [path, html] of render()) {
    assert.equal(readFileSync(new URL(`../../site/${path}`, import.meta.url), 'utf8'), html, `site/${path}: run node scripts/site/build.mjs`);
  }
  assert.deepEqual(Object.keys(STRINGS.fr).sort(), Object.keys(STRINGS.en).sort(), 'every string in both languages');
  // Every sign-up error code of the API (src/problem.rs) has a message.
  const problemRs = readFileSync(new URL('../../src/problem.rs', import.meta.url), 'utf8');
  const apiCodes = [...problemRs.matchAll(/Self::\w+ => "([a-z_]+)",/g)].map((m) => m[1]);
  // The verification link's codes have the verify page's own messages (verify.test.mjs).
  const notForSignUp = ['not_found', 'method_not_allowed', 'already_decided', 'not_pending', 'not_failed', 'unauthenticated', 'forbidden', 'internal_error', 'invalid_token', 'verification_expired'];
  assert.deepEqual([...ERROR_CODES].sort(), apiCodes.filter((c) => !notForSignUp.includes(c)).sort());
  for (const code of ERROR_CODES) assert.ok(STRINGS.en[`error.${code}`], code);
});

test('the privacy notice states how long finished requests are kept, from the configuration', async () => {
  // The portal's config.json comes from `b2b-signup site config` with SIGNUP_RETENTION_DAYS
  // unset: the handler's default, 365 days.
  const page = await newPage();
  await openForm(page);
  const retention = page.locator('#privacy-retention');
  await retention.waitFor({ state: 'visible' });
  assert.match(await retention.textContent(), /deleted with everything kept about it 365 days after its last change/);

  await openForm(page, '/fr/');
  await retention.waitFor({ state: 'visible' });
  assert.match(await retention.textContent(), /supprimée .* 365 jours après/);
});

test('a valid sign-up shows the request id, and the request is invited (dry run)', async () => {
  const page = await newPage();
  await openForm(page);
  const options = await page.locator('#access option').allTextContents();
  assert.deepEqual(options, ['The default for my organisation', 'Partner portal', 'Sales extranet']);
  assert.equal(await page.getAttribute('#terms-link', 'href'), 'https://contoso.example/terms');

  await fill(page, { email: 'ada@contoso.com' });
  await page.selectOption('#access', 'sales-extranet');
  await page.fill('#company', 'Contoso');
  await page.click('button[type="submit"]');

  const status = page.locator('#status');
  await status.filter({ hasText: 'Request reference' }).waitFor();
  const text = await status.textContent();
  assert.match(text, /Your request is accepted/);
  const id = text.match(ULID)?.[0];
  assert.ok(id, text);
  assert.equal(await focusedId(page), 'status', 'focus moves to the confirmation');
  assert.equal(await page.isHidden('#signup'), true);
  await page.screenshot({ path: join(ARTIFACTS, 'signup-success.png'), fullPage: true });

  // The worker picks it up through the runner's queue trigger: bounded polling.
  let row;
  for (const deadline = Date.now() + 15_000; Date.now() < deadline; ) {
    row = showRequest(portal, id);
    if (row.status === 'Invited') break;
    await new Promise((done) => setTimeout(done, 250));
  }
  assert.equal(row.status, 'Invited', JSON.stringify(row));
  assert.equal(row.dryRun, true);
  assert.equal(row.access, 'sales-extranet');
});

test('an invalid address is reported on the email field', async () => {
  const page = await newPage();
  await openForm(page);
  await fill(page, { email: 'ada lovelace@contoso' });
  await page.click('button[type="submit"]');

  const error = page.locator('#email-error');
  await error.waitFor({ state: 'visible' });
  assert.equal(await error.textContent(), STRINGS.en['error.invalid_email']);
  assert.equal(await page.getAttribute('#email', 'aria-invalid'), 'true');
  const describedBy = (await page.getAttribute('#email', 'aria-describedby')).split(' ');
  assert.equal(describedBy[0], 'email-error', 'the message is read with the field');
  assert.equal(await focusedId(page), 'email', 'focus moves to the field');
  assert.match(await page.locator('#status').textContent(), /There is a problem/);
  await page.screenshot({ path: join(ARTIFACTS, 'signup-error.png'), fullPage: true });
  await assertAccessible(page, 'the form with an error');

  // Correcting and sending again clears the error.
  await page.fill('#email', 'grace@contoso.com');
  await page.click('button[type="submit"]');
  await page.locator('#status').filter({ hasText: 'Request reference' }).waitFor();
  assert.equal(await page.getAttribute('#email', 'aria-invalid'), null);
});

test('a refused domain gets a clear message', async () => {
  const page = await newPage();
  await openForm(page);
  await fill(page, { email: 'someone@gmail.com' });
  await page.click('button[type="submit"]');
  const error = page.locator('#email-error');
  await error.waitFor({ state: 'visible' });
  assert.equal(await error.textContent(), STRINGS.en['error.domain_not_allowed']);
});

test('the terms must be accepted before anything is sent', async () => {
  const page = await newPage();
  await openForm(page);
  let posted = false;
  page.on('request', (request) => {
    if (request.method() === 'POST') posted = true;
  });
  await fill(page, { email: 'ada@contoso.com', terms: false });
  await page.click('button[type="submit"]');
  await page.locator('#acceptTerms-error').waitFor({ state: 'visible' });
  assert.equal(await focusedId(page), 'acceptTerms');
  assert.equal(posted, false);
});

test('the French page speaks French, and a French browser is sent to it', async () => {
  const page = await newPage({ locale: 'fr-FR' });
  await page.goto(`${portal.url}/`);
  await page.waitForURL(`${portal.url}/fr/`);
  await page.locator('#access-field').waitFor({ state: 'visible' });
  assert.equal(await page.getAttribute('html', 'lang'), 'fr');
  assert.equal(await page.textContent('h1'), STRINGS.fr['page.heading']);

  await fill(page, { email: 'quelqu.un@gmail.com' });
  await page.click('button[type="submit"]');
  await page.locator('#email-error').waitFor({ state: 'visible' });
  assert.equal(await page.textContent('#email-error'), STRINGS.fr['error.domain_not_allowed']);
  await page.screenshot({ path: join(ARTIFACTS, 'signup-fr.png'), fullPage: true });

  // The switcher wins over the browser's language, and is remembered.
  await page.click('.lang-switch');
  await page.waitForURL(`${portal.url}/`);
  await page.locator('#access-field').waitFor({ state: 'visible' });
  assert.equal(await page.getAttribute('html', 'lang'), 'en');
  await page.reload();
  await page.locator('#access-field').waitFor({ state: 'visible' });
  assert.equal(page.url(), `${portal.url}/`);
});

test('without JavaScript, a policy with terms cannot be met: the 303 lands on the terms error', async () => {
  // Static pages do not know the terms version (only config.json, which needs JavaScript).
  const page = await newPage({ javaScriptEnabled: false });
  await page.goto(`${portal.url}/`);
  await page.fill('#email', 'ada.terms@contoso.com');
  await page.fill('#displayName', 'Ada Lovelace');
  await Promise.all([page.waitForURL(/\/error\.html\?/), page.click('button[type="submit"]')]);
  const error = new URL(page.url());
  assert.equal(error.searchParams.get('code'), 'invalid_field');
  assert.equal(error.searchParams.get('field'), 'acceptTerms');
});

test('without JavaScript the form posts and the 303 lands on the thank-you or error page', async () => {
  const { terms, ...policyWithoutTerms } = TEST_POLICY;
  assert.ok(terms, 'the shared portal has terms; this one does not');
  const noTerms = await startPortal({ policy: policyWithoutTerms });
  try {
    await noJavaScriptFlow(noTerms);
  } finally {
    await noTerms.stop();
  }
});

async function noJavaScriptFlow(portal) {
  const page = await newPage({ javaScriptEnabled: false });
  await page.goto(`${portal.url}/`);
  assert.equal(await page.isVisible('noscript p, .note'), true, 'the no-JavaScript note shows');
  await page.fill('#email', 'ada.nojs@contoso.com');
  await page.fill('#displayName', 'Ada Lovelace');
  await Promise.all([page.waitForURL(/\/thanks\.html\?/), page.click('button[type="submit"]')]);
  const thanks = new URL(page.url());
  assert.equal(thanks.pathname, '/thanks.html');
  assert.match(thanks.searchParams.get('id'), ULID);
  assert.equal(thanks.searchParams.get('status'), 'queued');
  assert.equal(await page.isVisible('#queued'), true);
  assert.equal(await page.isVisible('#pending_approval'), false);
  assert.equal(await page.textContent('#queued p:first-child'), STRINGS.en['result.queued']);
  assert.match(await page.textContent('#queued'), new RegExp(STRINGS.en['next.queued'].slice(0, 40)));
  await page.screenshot({ path: join(ARTIFACTS, 'nojs-thanks.png'), fullPage: true });

  await page.goto(`${portal.url}/fr/`);
  await page.fill('#email', 'ada@gmail.com');
  await page.fill('#displayName', 'Ada');
  await Promise.all([page.waitForURL(/\/fr\/error\.html\?/), page.click('button[type="submit"]')]);
  const error = new URL(page.url());
  assert.equal(error.searchParams.get('code'), 'domain_not_allowed');
  assert.equal(error.searchParams.get('field'), 'email');
  assert.equal(await page.isVisible('#domain_not_allowed'), true);
  assert.equal(await page.textContent('#domain_not_allowed'), STRINGS.fr['error.domain_not_allowed']);
  assert.equal(await page.isVisible('#invalid_email'), false);
}

test('with JavaScript the result pages show the request id and the field', async () => {
  const page = await newPage();
  await page.goto(`${portal.url}/thanks.html?id=01J0000000000000000000000A&status=pending_approval`);
  await page.locator('#reference').waitFor({ state: 'visible' });
  assert.equal(await page.textContent('#request-id'), '01J0000000000000000000000A');
  await page.locator('#pending_approval').waitFor({ state: 'visible' });
  await assertAccessible(page, 'thanks.html');

  await page.goto(`${portal.url}/error.html?code=invalid_field&field=company#invalid_field`);
  await page.locator('#field-note').waitFor({ state: 'visible' });
  assert.equal(await page.textContent('#invalid_field'), STRINGS.en['error.invalid_field.company']);
  assert.match(await page.textContent('#field-note'), /Organisation/);
  await assertAccessible(page, 'error.html');

  await page.goto(`${portal.url}/thanks.html?id=<script>&status=queued`);
  await page.locator('#queued').waitFor({ state: 'visible' });
  assert.equal(await page.isHidden('#reference'), true, 'only a ULID is shown');
});

test('a repeat sign-up of an invited guest says whether the invitation was sent again', async () => {
  const page = await newPage();
  await page.goto(`${portal.url}/thanks.html?id=01J0000000000000000000000A&status=queued&resent=1`);
  await page.locator('#resent').waitFor({ state: 'visible' });
  assert.equal(await page.textContent('#resent'), STRINGS.en['result.resent']);
  assert.match(STRINGS.en['result.resent'], /junk mail/);
  assert.equal(await page.isVisible('#queued'), false);
  assert.equal(await page.isVisible('#already_sent'), false);

  await page.goto(`${portal.url}/fr/thanks.html?id=01J0000000000000000000000A&status=queued&resent=0#already_sent`);
  await page.locator('#already_sent').waitFor({ state: 'visible' });
  assert.equal(await page.textContent('#already_sent'), STRINGS.fr['result.already_sent']);
  assert.equal(await page.isVisible('#resent'), false);
  await assertAccessible(page, 'fr/thanks.html (already sent)');
});

test('keyboard only: Tab to the fields, type, Enter sends, focus moves to the result', async () => {
  const page = await newPage();
  await openForm(page);
  const seen = new Set();
  const tabTo = async (id) => {
    for (let i = 0; i < 12 && (await focusedId(page)) !== id; i += 1) {
      await page.keyboard.press('Tab');
      seen.add(await focusedId(page));
    }
    assert.equal(await focusedId(page), id, `Tab reaches #${id}`);
  };
  await tabTo('email');
  await page.keyboard.type('grace.hopper@fabrikam.com');
  await page.keyboard.press('Tab');
  assert.equal(await focusedId(page), 'displayName');
  await page.keyboard.type('Grace Hopper');
  await tabTo('acceptTerms');
  await page.keyboard.press('Space');
  assert.equal(await page.isChecked('#acceptTerms'), true);
  await tabTo('email'); // round the page once more: the honeypot is never on the way
  assert.equal(seen.has('website'), false, [...seen].join(', '));
  await page.keyboard.press('Enter');

  await page.locator('#status').filter({ hasText: 'Request reference' }).waitFor();
  assert.equal(await focusedId(page), 'status');
  assert.match(await page.textContent('#status'), /waiting for an administrator’s approval/);
});

test('the form passes axe-core without serious or critical violations, and looks right', async () => {
  const page = await newPage({ viewport: { width: 900, height: 1200 } });
  await openForm(page);
  await page.screenshot({ path: join(ARTIFACTS, 'signup-form.png'), fullPage: true });
  await assertAccessible(page, 'the form');
  await page.goto(`${portal.url}/fr/`);
  await page.locator('#access-field').waitFor({ state: 'visible' });
  await assertAccessible(page, 'the French form');
  // The honeypot is out of sight and out of the accessibility tree.
  const box = await page.locator('#website').boundingBox();
  assert.ok(box === null || box.x + box.width <= 0, JSON.stringify(box));
  assert.equal(await page.getAttribute('.hp', 'aria-hidden'), 'true');
});

test('a configured captcha: the widget and its script load (CSP allows them), and the token is sent', async () => {
  // A local stand-in for Turnstile's siteverify: the API checks the token server-side.
  const verified = [];
  const verifier = createServer((request, response) => {
    let body = '';
    request.on('data', (chunk) => (body += chunk));
    request.on('end', () => {
      const form = new URLSearchParams(body);
      verified.push({ secret: form.get('secret'), token: form.get('response') });
      response.setHeader('content-type', 'application/json');
      response.end(JSON.stringify({ success: form.get('response') === 'token-for-1x00000000000000000000AA' }));
    });
  });
  await new Promise((resolve) => verifier.listen(0, '127.0.0.1', resolve));
  const captchaPortal = await startPortal({
    env: {
      SIGNUP_CAPTCHA_PROVIDER: 'turnstile',
      SIGNUP_CAPTCHA_SITE_KEY: '1x00000000000000000000AA',
      SIGNUP_CAPTCHA_SECRET: 'test-captcha-secret',
      SIGNUP_CAPTCHA_VERIFY_URL: `http://127.0.0.1:${verifier.address().port}/siteverify`,
    },
  });
  try {
    const context = await browser.newContext({ locale: 'en-GB' });
    context.setDefaultTimeout(10_000);
    const loaded = [];
    let sent;
    await context.route('**/*', (route) => {
      const request = route.request();
      const url = new URL(request.url());
      if (url.hostname === '127.0.0.1') {
        if (request.method() === 'POST') sent = request.postDataJSON();
        return route.continue();
      }
      if (url.href === 'https://challenges.cloudflare.com/turnstile/v0/api.js') {
        loaded.push(url.href);
        // A stand-in for Turnstile, answered here (nothing leaves the machine): like the real
        // widget, it puts its token in a hidden input inside the form.
        return route.fulfill({
          contentType: 'text/javascript',
          body: `for (const slot of document.querySelectorAll('.cf-turnstile')) {
            const input = document.createElement('input');
            input.type = 'hidden'; input.name = 'cf-turnstile-response'; input.value = 'token-for-' + slot.dataset.sitekey;
            slot.append(input);
          }
          window.turnstile = { reset() {} };`,
        });
      }
      external.push(url.href);
      return route.abort();
    });
    const page = await context.newPage();
    const blocked = [];
    page.on('console', (message) => {
      if (/Content Security Policy/i.test(message.text())) blocked.push(message.text());
    });
    await page.goto(`${captchaPortal.url}/`);
    await page.locator('#captcha-field').waitFor({ state: 'visible' });
    await page.locator('input[name="cf-turnstile-response"]').waitFor({ state: 'attached' });
    assert.equal(await page.getAttribute('.cf-turnstile', 'data-sitekey'), '1x00000000000000000000AA');
    await fill(page, { email: 'captcha@contoso.com' });
    await page.click('button[type="submit"]');
    await page.locator('#status').filter({ hasText: 'Request reference' }).waitFor();
    assert.deepEqual(loaded, ['https://challenges.cloudflare.com/turnstile/v0/api.js']);
    assert.equal(sent['cf-turnstile-response'], 'token-for-1x00000000000000000000AA');
    assert.deepEqual(verified, [{ secret: 'test-captcha-secret', token: 'token-for-1x00000000000000000000AA' }]);
    assert.deepEqual(blocked, []);
    await context.close();
  } finally {
    await captchaPortal.stop();
    verifier.close();
  }
});

test('no request left this machine (no captcha configured, so no outside script)', () => {
  assert.deepEqual(external, []);
});
