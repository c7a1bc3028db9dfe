// Drives the Swagger UI of examples/notes.rs in Debian's Chromium:
// Authorize (OAuth2 password flow, alice / alice-password-1), then
// GET /users/me → Try it out → Execute, and checks the answer is 200 "alice".
//
//   node tests/browser/swagger.mjs http://127.0.0.1:PORT [screenshot.png]
//
// Exit status 0 on success; anything else prints why. Uses playwright-core
// (no bundled browser) with CHROMIUM (default /usr/bin/chromium).
import { mkdtempSync, rmSync, mkdirSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));
const base = (process.argv[2] || '').replace(/\/+$/, '');
const shot = resolve(process.argv[3] || join(here, '..', '..', 'target', 'swagger.png'));
const executablePath = process.env.CHROMIUM || '/usr/bin/chromium';
const STEP = 20_000;

function fail(msg) {
  console.error(`swagger.mjs: ${msg}`);
  process.exit(1);
}

if (!/^https?:\/\//.test(base)) fail('usage: node swagger.mjs <base-url> [screenshot.png]');
if (!existsSync(executablePath)) fail(`no Chromium at ${executablePath} (apt-get install chromium)`);

let chromium;
try {
  ({ chromium } = await import('playwright-core'));
} catch (e) {
  fail(`playwright-core is not installed (npm ci --prefix tests/browser): ${e.message}`);
}

// The whole run is bounded, whatever hangs.
const watchdog = setTimeout(() => fail('timed out after 120 s'), 120_000);
watchdog.unref();

const profile = mkdtempSync(join(tmpdir(), 'notes-swagger-'));
let context;
let page;
const consoleErrors = [];
try {
  context = await chromium.launchPersistentContext(profile, {
    executablePath,
    headless: true,
    args: [
      '--no-sandbox',
      '--disable-gpu',
      '--disable-quic',
      '--no-first-run',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
    ],
    viewport: { width: 1280, height: 1000 },
  });
  page = context.pages()[0] || (await context.newPage());
  page.setDefaultTimeout(STEP);
  page.on('console', (m) => {
    if (m.type() === 'error') consoleErrors.push(m.text());
  });
  page.on('pageerror', (e) => consoleErrors.push(String(e)));

  // Every request the page makes must stay on the service's origin.
  const origin = new URL(base).origin;
  const foreign = [];
  // Resources that failed to load (the favicon, which the service does not
  // have, aside).
  const broken = [];
  page.on('response', (r) => {
    if (r.status() >= 400 && !r.url().endsWith('/favicon.ico')) broken.push(`${r.status()} ${r.url()}`);
  });
  page.on('request', (r) => {
    const u = r.url();
    if (!u.startsWith(origin) && !u.startsWith('data:') && !u.startsWith('blob:')) foreign.push(u);
  });

  const resp = await page.goto(`${base}/docs`, { waitUntil: 'load' });
  if (!resp || resp.status() !== 200) fail(`GET /docs answered ${resp && resp.status()}`);
  await page.locator('.swagger-ui .info .title').first().waitFor();

  // Authorize: the OAuth2 password flow of the dialog.
  await page.locator('.swagger-ui .auth-wrapper button.authorize').first().click();
  const dialog = page.locator('.swagger-ui .dialog-ux .modal-ux');
  await dialog.waitFor();
  const oauth = dialog.locator('.auth-container').filter({ has: page.locator('#oauth_username') }).first();
  await oauth.waitFor();
  await oauth.locator('#oauth_username').fill('alice');
  await oauth.locator('#oauth_password').fill('alice-password-1');
  // client_id / client_secret stay empty.
  for (const id of ['#client_id', '#client_secret']) {
    const f = oauth.locator(id);
    if ((await f.count()) > 0 && (await f.inputValue()) !== '') fail(`${id} is not empty`);
  }
  const tokenResponse = page.waitForResponse((r) => r.url().endsWith('/auth/token'));
  await oauth.locator('button.authorize, button:has-text("Authorize")').first().click();
  const tr = await tokenResponse;
  if (tr.status() !== 200) fail(`the token request answered ${tr.status()}: ${await tr.text()}`);
  // Swagger UI shows "Logout" once authorized.
  // (the form is replaced by the authorized state, so look in the dialog).
  await dialog.locator('button:has-text("Logout")').first().waitFor();
  await dialog.locator('button.close-modal, button:has-text("Close")').first().click();
  await dialog.waitFor({ state: 'detached' });

  // GET /users/me → Try it out → Execute.
  const op = page
    .locator('.opblock.opblock-get')
    .filter({ has: page.locator('.opblock-summary-path', { hasText: /^\/users\/me$/ }) })
    .first();
  await op.locator('.opblock-summary').first().click();
  await op.locator('button.try-out__btn').click();
  const meResponse = page.waitForResponse((r) => r.url().endsWith('/users/me'));
  await op.locator('button.execute').click();
  const mr = await meResponse;
  const authz = (await mr.request().allHeaders())['authorization'] || '';
  if (!authz.startsWith('Bearer ')) fail(`GET /users/me was sent without the bearer token (${authz || 'none'})`);

  // What the page shows.
  const live = op.locator('.live-responses-table');
  await live.waitFor();
  const status = (await live.locator('.response .response-col_status').first().innerText()).trim();
  const body = await live.locator('.response-col_description .highlight-code pre').first().innerText();
  await op.scrollIntoViewIfNeeded();
  mkdirSync(dirname(shot), { recursive: true });
  await page.screenshot({ path: shot, fullPage: false });
  if (status !== '200') fail(`the UI shows status ${status}: ${body}`);
  if (!body.includes('"alice"')) fail(`the UI shows no "alice": ${body}`);
  if (broken.length) fail(`resources failed to load: ${broken.join(', ')}`);
  if (foreign.length) fail(`the page contacted other origins: ${foreign.join(', ')}`);
  if (consoleErrors.length) console.error(`console errors (not fatal): ${consoleErrors.join(' | ')}`);
  console.log(`ok: GET /users/me → ${status} ${body.replace(/\s+/g, ' ').trim()}; screenshot ${shot}`);
} catch (e) {
  if (page) {
    try {
      mkdirSync(dirname(shot), { recursive: true });
      await page.screenshot({ path: shot, fullPage: true });
      console.error(`screenshot of the failure: ${shot}`);
    } catch {}
  }
  fail(`${e && e.stack ? e.stack : e}${consoleErrors.length ? `\nconsole: ${consoleErrors.join(' | ')}` : ''}`);
} finally {
  if (context) await context.close().catch(() => {});
  rmSync(profile, { recursive: true, force: true });
}
clearTimeout(watchdog);
process.exit(0);
