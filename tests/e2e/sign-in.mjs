// Signs in through the server's development provider (DEV_ROUTES) in
// headless Chromium, as a person would: the login button's URL, the
// provider's page (type an address, submit), the redirects back through the
// callback (with the cookie that binds the sign-in to this browser), the
// front end's page with the one-time code, and the code traded for tokens.
// BASE_URL comes from run.sh (the server itself: the redirects go there).
import { fail, launch } from './chromium.mjs';

const { BASE_URL } = process.env;
const { page, close } = await launch();
try {
  const providers = await (await page.request.get(`${BASE_URL}/auth/providers`)).json();
  const dev = providers.data.find((p) => p.name === 'dev') ?? fail(`no dev provider: ${JSON.stringify(providers)}`);
  const email = `browser-${Date.now().toString(36)}@example.com`;
  await page.goto(`${dev.start_url}?redirect_uri=${encodeURIComponent(`${BASE_URL}/dev/signed-in`)}`);
  await page.locator('input[name="login_hint"]').fill(email);
  await Promise.all([page.waitForURL(/\/dev\/signed-in\?code=/, { timeout: 20000 }), page.locator('button').click()]);
  if (page.url().includes('eyJ')) fail(`a token in the URL: ${page.url()}`);
  const { code } = JSON.parse(await page.locator('body').innerText());
  if (!code) fail(`no code on ${page.url()}`);
  const token = await page.request.post(`${BASE_URL}/auth/oauth/token`, { data: { code } });
  if (token.status() !== 200) fail(`token: ${token.status()} ${await token.text()}`);
  const body = await token.json();
  if (body.user?.email !== email || !body.access_token) fail(`token answer: ${JSON.stringify(body)}`);
  const again = await page.request.post(`${BASE_URL}/auth/oauth/token`, { data: { code } });
  if (again.status() !== 400) fail(`the code worked twice: ${again.status()}`);
  console.log(`signed in through the development provider as ${email}; the code worked once`);
} finally {
  await close();
}
