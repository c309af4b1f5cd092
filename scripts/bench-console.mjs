#!/usr/bin/env node
// scripts/bench-console.mjs — the admin console's figures of docs/PERFORMANCE.md: with
// 1,000 requests stored, how long after sign-in the pending list is shown, and the decision
// round trip (click Confirm → the row shows the new status), p50 and p95.
//
// The real portal of the browser tests (tests/site/harness.mjs: Azurite in memory,
// funchost with its development identity provider, the debug handler in dry run), a real
// headless Chromium. Run from the repository root after `cargo build --workspace --bins`:
//
//     node scripts/bench-console.mjs [--requests 1000] [--pending 300] [--decisions 30]
import { parseArgs } from 'node:util';

import { chromium } from 'playwright-core';

import { CHROMIUM, CHROMIUM_ARGS, TEST_POLICY, startPortal } from '../tests/site/harness.mjs';

const { values } = parseArgs({
  options: {
    requests: { type: 'string', default: '1000' },
    pending: { type: 'string', default: '300' },
    decisions: { type: 'string', default: '30' },
  },
});
const total = Number(values.requests);
const pendingCount = Number(values.pending);
const decisions = Number(values.decisions);

const percentile = (sorted, p) => sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))];

const portal = await startPortal({ identity: {}, env: { SIGNUP_RATE_LIMITS: 'off' } });
const browser = await chromium.launch({ executablePath: CHROMIUM, headless: true, args: CHROMIUM_ARGS });
try {
  // fabrikam.com waits for approval, contoso.com is invited at once (TEST_POLICY).
  const seedStarted = Date.now();
  for (let start = 0; start < total; start += 20) {
    await Promise.all(
      Array.from({ length: Math.min(20, total - start) }, async (_, k) => {
        const i = start + k;
        const domain = i < pendingCount ? 'fabrikam.com' : 'contoso.com';
        const response = await fetch(`${portal.url}/api/signup`, {
          method: 'POST',
          headers: { 'content-type': 'application/json' },
          body: JSON.stringify({ email: `person${i}@${domain}`, displayName: `Person ${i}`, acceptTerms: TEST_POLICY.terms.version }),
        });
        if (response.status !== 202) throw new Error(`sign-up ${i}: ${response.status} ${await response.text()}`);
      }),
    );
  }
  console.log(`seeded ${total} requests (${pendingCount} waiting) in ${Date.now() - seedStarted} ms`);

  const context = await browser.newContext({ ignoreHTTPSErrors: true, viewport: { width: 1280, height: 900 } });
  context.setDefaultTimeout(30_000);
  const page = await context.newPage();
  await page.goto(`${portal.url}/console/`);
  await page.locator('#sign-in').click();
  await page.waitForURL(/authorize/);
  // From the choice on the sign-in page (the end of the person's part of the sign-in) to
  // the last pending row on screen: the redirect back, MSAL's code exchange, the token,
  // every page of the pending list, the table.
  const signedIn = Date.now();
  await page.locator('#user-admin').click();
  await page.locator(`#pending-table tbody tr:nth-child(${pendingCount})`).waitFor();
  const shownAfterSignIn = Date.now() - signedIn;
  const listOnly = Number(await page.evaluate(() => document.body.dataset.pendingShownMs));
  // Where the time went, from the console's own marks (ms since the page's navigation began).
  const marks = await page.evaluate(() => {
    const nav = performance.getEntriesByType('navigation')[0];
    const at = Object.fromEntries(performance.getEntriesByType('mark').map((m) => [m.name, Math.round(m.startTime)]));
    return { domContentLoaded: Math.round(nav.domContentLoadedEventEnd), ...at };
  });
  console.log('marks (ms after the redirect back to the console):', JSON.stringify(marks));

  const rounds = [];
  for (let i = 0; i < decisions; i += 1) {
    const row = page.locator('#pending-table tbody tr[data-status="PendingApproval"]').first();
    await row.locator('button[data-action="approve"]').click();
    await page.locator('#confirm-reason').fill(`measure ${i}`);
    const id = await row.getAttribute('data-id');
    const clicked = Date.now();
    await page.locator('#confirm-ok').click();
    await page.locator(`#pending-table tr[data-id="${id}"]:not([data-status="PendingApproval"])`).waitFor();
    rounds.push(Date.now() - clicked);
  }
  rounds.sort((a, b) => a - b);
  console.log(`pending list (${pendingCount} rows of ${total}) shown ${shownAfterSignIn} ms after sign-in (the list's own fetch + table: ${listOnly} ms)`);
  console.log(`decision round trip over ${decisions}: p50 ${percentile(rounds, 50)} ms, p95 ${percentile(rounds, 95)} ms, max ${rounds.at(-1)} ms`);
} finally {
  await browser.close();
  await portal.stop();
}
