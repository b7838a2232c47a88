// Drives Swagger UI like a new user: open it, try GET /projects without a
// token (401), authorize with an access token from a real login, try again
// (200), and keep a screenshot. BASE_URL, EMAIL, PASSWORD and ARTIFACTS come
// from run.sh.
import { join } from 'node:path';
import { fail, launch } from './chromium.mjs';

const { BASE_URL, EMAIL, PASSWORD, ARTIFACTS } = process.env;
const { page, close } = await launch({ viewport: { width: 1280, height: 1600 } });
const pageErrors = [];
page.on('pageerror', (e) => pageErrors.push(e.message));
// Console errors include CSP violations; the deliberate 401 below is not one.
page.on('console', (m) => {
  if (m.type() === 'error' && !m.text().includes('status of 401')) pageErrors.push(m.text());
});

try {
  // A real login through the API.
  const login = await page.request.post(`${BASE_URL}/auth/login`, { data: { email: EMAIL, password: PASSWORD } });
  if (login.status() !== 200) fail(`login: ${login.status()} ${await login.text()}`);
  const { access_token: token } = await login.json();

  await page.goto(`${BASE_URL}/swagger/index.html`);
  await page.locator('.swagger-ui .info .title', { hasText: 'Tollgate API' }).waitFor({ timeout: 20000 });

  const op = page.locator('#operations-projects-listProjects');
  const execute = async () => {
    await op.locator('.execute').click();
    const status = op.locator('.live-responses-table .response .response-col_status').first();
    await status.waitFor({ timeout: 10000 });
    return (await status.innerText()).trim();
  };
  await op.locator('.opblock-summary').first().click();
  await op.locator('.try-out__btn').click();

  const before = await execute();
  if (!before.startsWith('401')) fail(`without a token GET /projects answered ${before}, want 401`);
  console.log(`GET /projects before Authorize: ${before}`);

  // The Authorize dialog lists every scheme (API key, bearer, OAuth2
  // client credentials); the bearer one asks for the bare token.
  await page.locator('.scheme-container .authorize').click();
  const dialog = page.locator('.dialog-ux .modal-ux');
  const bearerBox = dialog.locator('.auth-container').filter({ hasText: 'BearerAuth' });
  await bearerBox.locator('input').first().fill(token);
  await bearerBox.locator('.auth-btn-wrapper .authorize').click();
  await dialog.locator('.btn-done').first().click();

  await op.locator('.btn-clear').click(); // drop the 401 so the next status read is fresh
  const after = await execute();
  if (!after.startsWith('200')) fail(`after Authorize GET /projects answered ${after}, want 200`);
  const curl = (await op.locator('.curl-command').first().textContent()) ?? '';
  if (!curl.includes('Authorization: Bearer ')) fail(`the request did not carry the token: ${curl}`);
  const body = await op.locator('.live-responses-table .response-col_description pre').first().innerText();
  if (!body.includes('"data"')) fail(`unexpected body: ${body}`);
  console.log(`GET /projects after Authorize: ${after}`);

  // The operation with its request and the 200 answer.
  await op.screenshot({ path: join(ARTIFACTS, 'swagger-ui.png') });
  console.log(`screenshot: ${join(ARTIFACTS, 'swagger-ui.png')}`);
  if (pageErrors.length) fail(`the page logged errors: ${pageErrors.join('; ')}`);
} catch (err) {
  await page.screenshot({ path: join(ARTIFACTS, 'swagger-ui-failure.png'), fullPage: true }).catch(() => {});
  throw err;
} finally {
  await close();
}
