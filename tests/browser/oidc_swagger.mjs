// Drives the Swagger UI of an API of the provider's tokens (e.g.
// examples/resource_server.rs) in Debian's Chromium against a real OpenID
// provider (tests/oidc/provider.mjs):
//   1. GET /whoami → Try it out → Execute without logging in: the UI shows 401;
//   2. Authorize: FLOW (PKCE, public client pre-filled) — `authorization_code`
//      of the openIdConnect scheme (read from the provider's discovery
//      document) or `authorizationCode` of the oauth2 scheme — the
//      provider's login page (any user) and
//      consent page in the popup, back through oauth-receiver.html, the token
//      request from the page;
//   3. Execute again: the UI shows 200 and the user's subject.
//
//   node tests/browser/oidc_swagger.mjs <api-base-url> <issuer> <user> <flow> [screenshot.png]
//
// Exit status 0 on success; anything else prints why. Uses playwright-core
// (no bundled browser) with CHROMIUM (default /usr/bin/chromium).
import { mkdtempSync, rmSync, mkdirSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));
const base = (process.argv[2] || '').replace(/\/+$/, '');
const issuer = (process.argv[3] || '').replace(/\/+$/, '');
const user = process.argv[4] || '';
const flowName = process.argv[5] || '';
const shot = resolve(process.argv[6] || join(here, '..', '..', 'target', 'oidc-swagger.png'));
const executablePath = process.env.CHROMIUM || '/usr/bin/chromium';
const STEP = 20_000;

function fail(msg) {
  console.error(`oidc_swagger.mjs: ${msg}`);
  process.exit(1);
}

if (!/^https?:\/\//.test(base) || !/^https?:\/\//.test(issuer) || !user
    || !['authorization_code', 'authorizationCode'].includes(flowName)) {
  fail('usage: node oidc_swagger.mjs <api-base-url> <issuer> <user> <authorization_code|authorizationCode> [screenshot.png]');
}
if (!existsSync(executablePath)) fail(`no Chromium at ${executablePath} (apt-get install chromium)`);

let chromium;
try {
  ({ chromium } = await import('playwright-core'));
} catch (e) {
  fail(`playwright-core is not installed (npm ci --prefix tests/browser): ${e.message}`);
}

const watchdog = setTimeout(() => fail('timed out after 120 s'), 120_000);
watchdog.unref();

const profile = mkdtempSync(join(tmpdir(), 'oidc-swagger-'));
let context;
let page;
const consoleErrors = [];
const cspViolations = [];
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
    if (/Content Security Policy/i.test(m.text())) cspViolations.push(m.text());
  });
  page.on('pageerror', (e) => consoleErrors.push(String(e)));

  // The page may reach only the API and the provider.
  const allowed = [new URL(base).origin, new URL(issuer).origin];
  const foreign = [];
  page.on('request', (r) => {
    const u = r.url();
    if (!allowed.some((o) => u.startsWith(o)) && !u.startsWith('data:') && !u.startsWith('blob:')) foreign.push(u);
  });

  const resp = await page.goto(`${base}/docs`, { waitUntil: 'load' });
  if (!resp || resp.status() !== 200) fail(`GET /docs answered ${resp && resp.status()}`);
  await page.locator('.swagger-ui .info .title').first().waitFor();

  const op = page
    .locator('.opblock.opblock-get')
    .filter({ has: page.locator('.opblock-summary-path', { hasText: /^\/whoami$/ }) })
    .first();
  await op.locator('.opblock-summary').first().click();
  await op.locator('button.try-out__btn').click();
  const execute = async () => {
    const response = page.waitForResponse((r) => r.url() === `${base}/whoami`);
    await op.locator('button.execute').click();
    const r = await response;
    const live = op.locator('.live-responses-table .response .response-col_status').first();
    await live.waitFor();
    const shown = (await live.innerText()).trim();
    const authz = (await r.request().allHeaders())['authorization'] || '';
    const body = await op.locator('.live-responses-table .response-col_description .highlight-code pre').first().innerText();
    return { status: r.status(), shown, authz, body };
  };

  // 1. Not logged in: 401, and no Authorization header was sent.
  const before = await execute();
  if (before.status !== 401 || before.shown !== '401') {
    fail(`without logging in, GET /whoami answered ${before.status} (UI: ${before.shown}): ${before.body}`);
  }
  if (before.authz) fail(`an Authorization header was sent before logging in: ${before.authz}`);
  console.log(`ok: before login GET /whoami → ${before.status}`);

  // 2. Authorize: the openIdConnect scheme lists the provider's flows
  // (read from its discovery document), the oauth2 scheme the document's.
  await page.locator('.swagger-ui .auth-wrapper button.authorize').first().click();
  const dialog = page.locator('.swagger-ui .dialog-ux .modal-ux');
  await dialog.waitFor();
  const flow = dialog
    .locator('.auth-container')
    .filter({ has: page.locator(`#client_id_${flowName}`) })
    .first();
  await flow.waitFor();
  const flowText = await flow.innerText();
  if (!flowText.includes(`${flowName} with PKCE`)) fail(`the flow is not marked PKCE: ${flowText}`);
  const clientId = await flow.locator(`#client_id_${flowName}`).inputValue();
  if (clientId !== 'spa') fail(`client_id is ${JSON.stringify(clientId)}, not the pre-filled "spa"`);
  if ((await flow.locator(`#client_secret_${flowName}`).count()) > 0) {
    const secret = await flow.locator(`#client_secret_${flowName}`).inputValue();
    if (secret !== '') fail('a client secret is pre-filled');
  }
  const notesRead = flow.locator('input[type=checkbox][data-value="notes:read"]');
  if ((await notesRead.count()) === 0) fail(`no notes:read scope in the dialog: ${flowText}`);
  if (!(await notesRead.isChecked())) fail('notes:read is not pre-selected');

  // The authorization request, as the popup first loads it (it redirects on).
  const authRequest = new Promise((ok) => context.on('request', (r) => {
    if (r.url().startsWith(`${issuer}/auth?`)) ok(r.url());
  }));
  const popupPromise = page.waitForEvent('popup');
  const tokenResponse = page.waitForResponse((r) => r.url() === `${issuer}/token`, { timeout: 60_000 });
  await flow.locator('button.authorize, button:has-text("Authorize")').first().click();
  const popup = await popupPromise;
  popup.setDefaultTimeout(STEP);
  const authUrl = new URL(await authRequest);
  for (const p of ['code_challenge', 'code_challenge_method', 'state']) {
    if (!authUrl.searchParams.get(p)) fail(`the authorization request has no ${p}: ${authUrl}`);
  }
  if (authUrl.searchParams.get('code_challenge_method') !== 'S256') fail(`not S256: ${authUrl}`);
  if (authUrl.searchParams.get('redirect_uri') !== `${base}/docs/oauth-receiver.html`) {
    fail(`unexpected redirect_uri in ${authUrl}`);
  }
  // The provider's dev login page (any login and password), then consent.
  await popup.locator('input[name="login"]').fill(user);
  await popup.locator('input[name="password"]').fill('any-password');
  await popup.locator('button[type="submit"]').first().click();
  // The consent page (a form without a login field), unless the provider
  // skipped it and the popup already went back and closed.
  try {
    await popup.locator('form:not(:has(input[name="login"])) button[type="submit"]').first().waitFor();
    await popup.locator('button[type="submit"]').first().click();
  } catch (e) {
    if (!popup.isClosed()) throw e;
  }
  const tr = await tokenResponse;
  const tokenBody = await tr.text();
  if (tr.status() !== 200) fail(`the token request answered ${tr.status()}: ${tokenBody}`);
  const form = new URLSearchParams(tr.request().postData() || '');
  if (!form.get('code_verifier')) fail('the token request carries no code_verifier');
  if (form.get('client_secret')) fail('the token request carries a client secret');
  await dialog.locator('button:has-text("Logout")').first().waitFor();
  await dialog.locator('button.close-modal, button:has-text("Close")').first().click();
  await dialog.waitFor({ state: 'detached' });

  // 3. Logged in: 200, the user's subject.
  const after = await execute();
  if (!after.authz.startsWith('Bearer ')) fail(`GET /whoami was sent without the bearer token (${after.authz || 'none'})`);
  await op.scrollIntoViewIfNeeded();
  mkdirSync(dirname(shot), { recursive: true });
  await page.screenshot({ path: shot, fullPage: false });
  if (after.status !== 200 || after.shown !== '200') {
    fail(`after login GET /whoami answered ${after.status} (UI: ${after.shown}): ${after.body}`);
  }
  if (!after.body.includes(`"${user}"`)) fail(`the UI shows no "${user}": ${after.body}`);
  if (foreign.length) fail(`the page contacted other origins: ${foreign.join(', ')}`);
  if (cspViolations.length) fail(`CSP violations: ${cspViolations.join(' | ')}`);
  if (consoleErrors.length) console.error(`console errors (not fatal): ${consoleErrors.join(' | ')}`);
  console.log(`ok: after login GET /whoami → ${after.status} ${after.body.replace(/\s+/g, ' ').trim()}; screenshot ${shot}`);
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
