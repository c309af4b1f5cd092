// What a partner is told after sending the form, in a real headless Chromium against the
// real portal (see harness.mjs): the thank-you text with the partly masked address, the
// reference and what happens next, in English and French; the wait of a rate-limited
// sign-up in human units, with JavaScript and through the form's 303; an address with a
// character Microsoft Entra ID refuses. Run after `cargo build --workspace --bins`:
//
//     node --test tests/site/nextsteps.test.mjs
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';

import { chromium } from 'playwright-core';

import { ARTIFACTS, TEST_POLICY, localPage, startWithBrowser, stopBoth } from './harness.mjs';
import { STRINGS, forbiddenLocalCharacter, maskAddress, rateLimitedText, t, waitText } from '../../site/assets/i18n.js';

const ULID = /[0-9A-HJKMNP-TV-Z]{26}/;
// Without terms, so the form also works without JavaScript; one sign-up per address a day.
const { terms, ...POLICY } = TEST_POLICY;
const ENV = {
  SIGNUP_RATE_LIMITS: 'ip=1000/1h,domain=1000/1h,address=1/1d',
  SIGNUP_ORG_NAME: 'Contoso <Ltd>',
  SIGNUP_LOGO_URL: '/assets/logo.svg',
  SIGNUP_SUPPORT_CONTACT: 'partners@contoso.example',
  SIGNUP_PRIVACY_URL: 'https://contoso.example/privacy',
};

let portal;
let browser;
const external = [];

before(async () => {
  mkdirSync(ARTIFACTS, { recursive: true });
  ({ portal, browser } = await startWithBrowser(chromium, { policy: POLICY, env: ENV }));
});

after(() => stopBoth({ portal, browser }));

const newPage = (options) => localPage(browser, external, options);

async function signUp(page, path, email) {
  await page.goto(`${portal.url}${path}`);
  await page.locator('#access-field').waitFor({ state: 'visible' });
  await page.fill('#email', email);
  await page.fill('#displayName', 'Ada Lovelace');
  const answer = page.waitForResponse((r) => r.url().endsWith('/api/signup'));
  await page.click('button[type="submit"]');
  return answer;
}

test('waits, masks and forbidden characters, as the pages say them', () => {
  const cases = [
    [1, 'a few seconds', 'quelques secondes'],
    [30, 'about 30 seconds', 'environ 30 secondes'],
    [45, 'about a minute', 'environ une minute'],
    [89, 'about a minute', 'environ une minute'],
    [90, 'about 2 minutes', 'environ 2 minutes'],
    [3000, 'about 50 minutes', 'environ 50 minutes'],
    [5340, 'about 89 minutes', 'environ 89 minutes'],
    [5400, 'about 2 hours', 'environ 2 heures'],
    [86400, 'about 24 hours', 'environ 24 heures'],
  ];
  for (const [seconds, en, fr] of cases) {
    assert.equal(waitText('en', seconds), en, String(seconds));
    assert.equal(waitText('fr', seconds), fr, String(seconds));
  }
  assert.equal(maskAddress(' ada@contoso.com '), 'a•••@contoso.com');
  assert.equal(maskAddress('@contoso.com'), null);
  assert.equal(maskAddress('ada@'), null);
  assert.equal(forbiddenLocalCharacter('ada+news@contoso.com'), '+');
  assert.equal(forbiddenLocalCharacter('zoë@contoso.com'), 'ë');
  assert.equal(forbiddenLocalCharacter("o'neil.ada-x_y@contoso.com"), null);
  assert.equal(forbiddenLocalCharacter('ada lovelace@contoso'), null, 'not one address: another message');
});

test('the page shows the logo named for the organisation, the support contact and the privacy notice', async () => {
  for (const lang of ['en', 'fr']) {
    const page = await newPage();
    await page.goto(`${portal.url}${lang === 'en' ? '/' : '/fr/'}`);
    await page.locator('#site-footer').waitFor({ state: 'visible' });
    const logo = page.locator('header #logo');
    // Shown (no image file in the test's site: its alt text stands in).
    assert.equal(await logo.evaluate((img) => img.hidden), false);
    assert.equal(await logo.getAttribute('alt'), 'Contoso <Ltd>');
    assert.equal(await logo.evaluate((img) => img.src), `${portal.url}/assets/logo.svg`);
    assert.equal(await page.getAttribute('#support-link', 'href'), 'mailto:partners@contoso.example');
    assert.equal(await page.textContent('#support-link'), 'partners@contoso.example');
    assert.match(await page.textContent('#support'), new RegExp(`^${STRINGS[lang]['footer.support'].replace('?', '\\?')}`));
    assert.equal(await page.getAttribute('#privacy-link', 'href'), 'https://contoso.example/privacy');
    assert.equal(await page.textContent('#privacy-link'), STRINGS[lang]['footer.privacy']);
    await page.context().close();
  }
  // A logo on the site itself needs nothing more than the page's own origin.
  assert.match(portal.csp, /img-src 'self';/);
});

test('the thank-you text shows the masked address, the reference and what happens next, in English and French', async () => {
  for (const [path, lang, email, masked, state] of [
    ['/', 'en', 'ada.next@contoso.com', 'a•••@contoso.com', 'queued'],
    ['/fr/', 'fr', 'grace.next@fabrikam.com', 'g•••@fabrikam.com', 'pending_approval'],
  ]) {
    const page = await newPage();
    await signUp(page, path, email);
    const status = page.locator('#status');
    await status.filter({ hasText: STRINGS[lang]['result.reference'] }).waitFor();
    const paragraphs = await status.locator('p').allTextContents();
    assert.equal(paragraphs[0], STRINGS[lang][`result.${state}`]);
    assert.equal(paragraphs[1], t(lang, 'result.address', { address: masked }));
    assert.match(paragraphs[2], ULID);
    assert.equal(paragraphs.at(-1), STRINGS[lang][`next.${state}`]);
    const body = await page.textContent('body');
    assert.ok(!body.includes(email.split('@')[0]), 'the full address is not shown');
    assert.ok(!page.url().includes(email.split('@')[0]), `not in the URL: ${page.url()}`);
    await page.screenshot({ path: join(ARTIFACTS, `next-steps-${lang}.png`), fullPage: true });
    await page.context().close();
  }
});

test('the thank-you page without JavaScript says what happens next, and its URL has no address', async () => {
  const page = await newPage({ javaScriptEnabled: false });
  await page.goto(`${portal.url}/fr/`);
  await page.fill('#email', 'ada.nojs.next@fabrikam.com');
  await page.fill('#displayName', 'Ada Lovelace');
  await Promise.all([page.waitForURL(/\/fr\/thanks\.html\?/), page.click('button[type="submit"]')]);
  assert.ok(!page.url().includes('ada'), page.url());
  assert.equal(new URL(page.url()).searchParams.get('status'), 'pending_approval');
  const text = await page.textContent('#pending_approval');
  assert.ok(text.includes(STRINGS.fr['next.pending_approval']), text);
  await page.context().close();
});

test('a rate-limited sign-up says the wait in human units, with and without JavaScript', async () => {
  const email = 'linus.limit@contoso.com';
  const page = await newPage();
  assert.equal((await signUp(page, '/', email)).status(), 202);
  await page.locator('#status').filter({ hasText: 'Request reference' }).waitFor();

  // With JavaScript: the message says the Retry-After in hours.
  const again = await newPage();
  const answer = await signUp(again, '/', email);
  assert.equal(answer.status(), 429);
  const seconds = Number(answer.headers()['retry-after']);
  // The daily window ends at a fixed time: anything up to a day.
  assert.ok(seconds > 0 && seconds <= 24 * 3600, String(seconds));
  const expected = rateLimitedText('en', seconds);
  assert.match(expected, /^Too many attempts\. Please wait (about (\d+ (seconds|minutes|hours)|a minute|an hour)|a few seconds), then try again\.$/);
  await again.locator('#status').filter({ hasText: expected }).waitFor();
  assert.equal(await again.locator('#status p').last().textContent(), expected);

  // Without JavaScript: the 303 carries the wait, never the address.
  const nojs = await newPage({ javaScriptEnabled: false });
  await nojs.goto(`${portal.url}/fr/`);
  await nojs.fill('#email', email);
  await nojs.fill('#displayName', 'Linus');
  await Promise.all([nojs.waitForURL(/\/fr\/error\.html\?/), nojs.click('button[type="submit"]')]);
  const landed = new URL(nojs.url());
  assert.equal(landed.searchParams.get('code'), 'rate_limited');
  const retry = Number(landed.searchParams.get('retry'));
  assert.ok(retry > 0 && Math.abs(retry - seconds) <= 5, nojs.url());
  assert.ok(!nojs.url().includes('linus'), nojs.url());
  assert.equal(await nojs.isVisible('#rate_limited'), true);
  assert.equal(await nojs.textContent('#rate_limited'), STRINGS.fr['error.rate_limited']);

  // The same page with its script says it as the form's script does.
  const shown = await newPage();
  await shown.goto(landed.href);
  await shown.locator('#rate_limited').filter({ hasText: 'environ' }).waitFor();
  assert.equal(await shown.textContent('#rate_limited'), rateLimitedText('fr', retry));
  for (const p of [page, again, nojs, shown]) await p.context().close();
});

test('an address with a character Microsoft Entra ID refuses says which one', async () => {
  const page = await newPage();
  await signUp(page, '/', 'ada+news@contoso.com');
  const error = page.locator('#email-error');
  await error.waitFor({ state: 'visible' });
  assert.equal(await error.textContent(), t('en', 'error.invalid_email.character', { char: '+' }));
  assert.match(await error.textContent(), /“\+”/);
  await page.context().close();
});

test('no request left this machine', () => {
  assert.deepEqual(external, []);
});
