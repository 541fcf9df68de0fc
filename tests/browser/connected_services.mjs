// Clicks through the Connected Services example in headless Chromium:
// sign in -> connect (the test provider approves) -> consent toggle ->
// data shown -> records page -> disconnect, asserting on what the page
// shows. Screenshots go to OUT_DIR. Any console error, page error, failed
// request or HTTP error response fails the run.
//
//   node connected_services.mjs http://127.0.0.1:PORT/ OUT_DIR
//
// Started by tests/connected_services.rs, which starts the app first.
import { chromium } from 'playwright-core';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';

const [base, outDir] = process.argv.slice(2);
if (!base || !outDir) {
  console.error('usage: connected_services.mjs BASE_URL OUT_DIR');
  process.exit(2);
}
mkdirSync(outDir, { recursive: true });

const problems = [];
const steps = [];
const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM ?? '/usr/bin/chromium',
  headless: true,
  timeout: 60_000,
  args: [
    '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
    '--disable-background-networking', '--disable-component-update', '--disable-sync',
  ],
});

function check(cond, what) {
  if (!cond) throw new Error(`check failed: ${what}`);
  steps.push(what);
}

async function text(page, selector) {
  return (await page.locator(selector).innerText()).replace(/\s+/g, ' ');
}

async function shot(page, name) {
  await page.screenshot({ path: join(outDir, `${name}.png`), fullPage: true });
}

try {
  const context = await browser.newContext({ viewport: { width: 1100, height: 900 } });
  const page = await context.newPage();
  page.on('console', (m) => {
    if (m.type() === 'error' || m.type() === 'warning') problems.push(`console ${m.type()}: ${m.text()}`);
  });
  page.on('pageerror', (e) => problems.push(`page error: ${e.message}`));
  page.on('requestfailed', (r) => problems.push(`request failed: ${r.url()} ${r.failure()?.errorText}`));
  page.on('response', (r) => {
    if (r.status() >= 400) problems.push(`HTTP ${r.status()} for ${r.url()}`);
  });

  // Sign in.
  await page.goto(base);
  check((await page.title()).startsWith('Sign in'), 'the sign-in page is shown first');
  await page.getByLabel('Your name').fill('ada');
  await page.getByRole('button', { name: 'Sign in' }).click();
  await page.getByRole('heading', { name: 'Connected Services' }).waitFor();
  check((await text(page, 'header')).includes('Signed in as ada'), 'signed in as ada');
  check(await page.locator('#no-connections').isVisible(), 'no connections yet');
  await shot(page, '01-signed-in');

  // Connect: the provider's authorization page approves and redirects back.
  await page.getByRole('button', { name: 'Connect TestProvider' }).click();
  await page.getByRole('status').filter({ hasText: 'Connected TestProvider as ada@example.test' }).waitFor();
  const section = page.locator('section.connection');
  check((await section.count()) === 1, 'one connection is listed');
  const conn = await text(page, 'section.connection');
  check(conn.includes('ada@example.test'), 'the account is shown');
  check(conn.includes('Active'), 'the status is Active');
  check(conn.includes('offline_access'), 'the granted scopes are shown');
  check(conn.includes('matching: Off'), 'the purpose starts switched off');
  check(conn.includes('Nothing is held'), 'nothing is held before consent');
  await shot(page, '02-connected');

  // Consent toggle: turning `matching` on fetches the stream.
  await page.getByRole('button', { name: 'Turn on matching for TestProvider' }).click();
  await page.getByRole('status').filter({ hasText: 'matching is on' }).waitFor();
  const on = await text(page, 'section.connection');
  check(on.includes('matching: On'), 'the purpose is on');
  check(/12 record\(s\) of items held for matching/.test(on), 'the data held is shown (12 items)');
  check(
    (await page.getByRole('button', { name: 'Turn off matching for TestProvider' }).getAttribute('aria-pressed')) === 'true',
    'the toggle reports its state (aria-pressed)',
  );
  await shot(page, '03-consented');

  // The data itself; viewing it is logged as an access.
  await page.getByRole('link', { name: 'Show records' }).click();
  await page.getByRole('heading', { name: /Records of items held for matching/ }).waitFor();
  const table = await text(page, 'table');
  check(table.includes('Item number 1') && table.includes('Item number 12'), 'the records are shown');
  await shot(page, '04-records');
  await page.getByRole('link', { name: 'Back to Connected Services' }).click();
  await page.getByRole('heading', { name: 'Recent accesses' }).waitFor();
  check(
    (await text(page, 'section.connection table')).includes('connected-services page 12 record(s) of items matching'),
    'the read is listed under Recent accesses',
  );

  // Turning it off deletes what was held for it.
  await page.getByRole('button', { name: 'Turn off matching for TestProvider' }).click();
  await page.getByRole('status').filter({ hasText: 'matching is off' }).waitFor();
  check((await text(page, 'section.connection')).includes('Nothing is held'), 'revoking consent deletes the records');
  await page.getByRole('button', { name: 'Turn on matching for TestProvider' }).click();
  await page.getByRole('status').filter({ hasText: 'matching is on' }).waitFor();

  // Disconnect, with the report.
  await page.getByRole('button', { name: 'Disconnect TestProvider' }).click();
  await page.getByRole('heading', { name: 'TestProvider disconnected' }).waitFor();
  const report = await text(page, 'dl.report');
  check(report.includes('Refresh token at the provider revoked'), 'the refresh token was revoked at the provider');
  check(report.includes('Connection deleted yes'), 'the connection was deleted');
  check(/Records deleted [1-9]/.test(report), 'the records were deleted');
  await shot(page, '05-disconnected');
  await page.getByRole('link', { name: 'Back to Connected Services' }).click();
  check(await page.locator('#no-connections').isVisible(), 'no connections are left');

  // A form posted without this page's token (as another site's page
  // would) is refused, though the browser sends the session cookie.
  const forged = await context.request.post(new URL('connect', base).href, {
    form: { connector: 'test-provider' },
    maxRedirects: 0,
  });
  check(forged.status() === 403, 'a POST without the CSRF token is refused');
  const foreign = await context.request.post(new URL('sign-out', base).href, {
    form: { csrf: 'x'.repeat(43) },
    headers: { Origin: 'https://attacker.example' },
    maxRedirects: 0,
  });
  check(foreign.status() === 403, 'a POST from another origin is refused');
  await page.reload();
  check((await text(page, 'header')).includes('Signed in as ada'), 'still signed in after the refused POSTs');

  await context.close();
} catch (e) {
  problems.push(`failed: ${e.message}`);
} finally {
  await browser.close();
}

console.log(JSON.stringify({ steps, problems }, null, 2));
process.exit(problems.length === 0 ? 0 : 1);
