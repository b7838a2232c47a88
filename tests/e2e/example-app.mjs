// Drives the example front end (web/example, served at /dev/example/) in
// headless Chromium as a person would: register, follow the verification
// link from the mail, log in (a cookie session), see the projects list, log
// out. Checks that no script can read the session cookie and that the
// session is gone after logout. BASE_URL comes from run.sh.
import { join } from 'node:path';
import { fail, launch } from './chromium.mjs';

const { BASE_URL } = process.env;
const { context, page, close } = await launch();
const errors = [];
page.on('pageerror', (e) => errors.push(e.message));
// Refused requests (the 401 before login, the viewer's 403) are answers the
// app handles, which Chromium logs anyway: only other errors count.
page.on('console', (m) => { if (m.type() === 'error' && !m.text().startsWith('Failed to load resource')) errors.push(m.text()); });
try {
  const email = `example-${Date.now().toString(36)}@example.com`;
  const password = 'Correct-Horse-9';
  await page.goto(`${BASE_URL}/dev/example/`);
  await page.locator('#signed-out').waitFor();

  await page.locator('#register input[name="email"]').fill(email);
  await page.locator('#register input[name="password"]').fill(password);
  await page.locator('#register button').click();
  await page.locator('#status').filter({ hasText: 'Check your inbox' }).waitFor();

  // The verification link from the mail, opened in the browser.
  const mail = await (await page.request.get(`${BASE_URL}/dev/mail?to=${encodeURIComponent(email)}`)).json();
  const link = mail[0]?.links?.find((l) => l.includes('/auth/verify')) ?? fail(`no verification link: ${JSON.stringify(mail)}`);
  const verified = await page.goto(link);
  if (verified.status() !== 200) fail(`the verification link answered ${verified.status()}`);
  const shown = await page.locator('body').innerText();
  if (!/verified/i.test(shown)) fail(`the verification page says: ${shown}`);

  await page.goto(`${BASE_URL}/dev/example/`);
  await page.locator('#login input[name="email"]').fill(email);
  await page.locator('#login input[name="password"]').fill(password);
  await page.locator('#login button').click();
  await page.locator('#signed-in').waitFor();
  const who = await page.locator('#who').innerText();
  if (who !== email) fail(`signed in as ${who}`);
  await page.locator('#projects li').first().waitFor();
  const projects = await page.locator('#projects').innerText();
  if (!/No projects yet/.test(projects)) fail(`projects list: ${projects}`);

  // The session cookie is HttpOnly: the page's scripts see the CSRF cookie only.
  const visible = await page.evaluate(() => document.cookie);
  if (visible.includes('tollgate_session') || !visible.includes('tollgate_csrf')) fail(`document.cookie: ${visible}`);
  const cookies = await context.cookies(BASE_URL);
  const session = cookies.find((c) => c.name === 'tollgate_session') ?? fail(`no session cookie: ${JSON.stringify(cookies)}`);
  if (!session.httpOnly || session.sameSite !== 'Lax' || session.value.includes('.')) fail(`session cookie: ${JSON.stringify(session)}`);

  // A viewer's write is refused by role, not by CSRF: the token went along.
  await page.locator('#new-project input[name="name"]').fill('From the browser');
  await page.locator('#new-project button').click();
  await page.locator('#status').filter({ hasText: 'Insufficient permissions' }).waitFor();

  // A reload keeps the session (the cookie, not page memory).
  await page.reload();
  await page.locator('#signed-in').waitFor();

  await page.locator('#logout').click();
  await page.locator('#signed-out').waitFor();
  const left = await context.cookies(BASE_URL);
  if (left.some((c) => c.name.includes('tollgate_session'))) fail(`session cookie left after logout: ${JSON.stringify(left)}`);
  // The ended session's cookie value is refused too.
  const replay = await page.request.get(`${BASE_URL}/users/me`, { headers: { Cookie: `tollgate_session=${session.value}` } });
  if (replay.status() !== 401) fail(`the ended session still works: ${replay.status()}`);
  if (errors.length) fail(`page errors: ${errors.join('; ')}`);
  console.log(`the example app registered, verified, logged in with a cookie session as ${email}, listed projects and logged out`);
} finally {
  await close();
}
