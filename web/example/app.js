// The example app's whole logic. The API is this page's own origin (the
// server serves it in development); a front end on another origin (a Vite or
// Next dev server) calls the API's URL instead, with that origin listed in
// CORS_ALLOWED_ORIGINS, and keeps everything else as it is here.
const api = '';

// The CSRF cookie's value, sent as X-CSRF-Token on every unsafe request:
// <product>_csrf (tollgate_csrf until you rename it), __Host-<product>_csrf
// over https. It is the only cookie scripts can read.
function csrfToken() {
  for (const part of document.cookie.split('; ')) {
    const [name, value] = part.split('=');
    if (name.endsWith('_csrf')) return value;
  }
  return '';
}

// call sends a request with the session cookie (credentials: 'include'), and
// the CSRF token on unsafe methods. It returns the status and the JSON body.
async function call(method, path, body) {
  const headers = {};
  if (body !== undefined) headers['Content-Type'] = 'application/json';
  if (!['GET', 'HEAD'].includes(method)) headers['X-CSRF-Token'] = csrfToken();
  const res = await fetch(api + path, {
    method, headers, credentials: 'include', body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await res.text();
  return { status: res.status, body: text ? JSON.parse(text) : null };
}

const $ = (id) => document.getElementById(id);
const say = (message) => { $('status').textContent = message; };

async function show() {
  const me = await call('GET', '/users/me');
  const signedIn = me.status === 200;
  $('signed-in').hidden = !signedIn;
  $('signed-out').hidden = signedIn;
  if (!signedIn) return;
  $('who').textContent = me.body.email;
  $('role').textContent = me.body.role;
  const list = $('projects');
  list.replaceChildren();
  const projects = await call('GET', '/projects');
  if (projects.status !== 200) {
    list.append(item(projects.status === 404 ? 'This API has no /projects' : `Could not list projects: ${projects.body?.error}`));
    return;
  }
  if (projects.body.data.length === 0) list.append(item('No projects yet'));
  for (const p of projects.body.data) list.append(item(p.name));
}

function item(text) {
  const li = document.createElement('li');
  li.textContent = text;
  return li;
}

function fields(form) {
  return Object.fromEntries(new FormData(form).entries());
}

$('login').addEventListener('submit', async (ev) => {
  ev.preventDefault();
  const { email, password } = fields(ev.target);
  const res = await call('POST', '/auth/login', { email, password, session: 'cookie' });
  if (res.status === 200 && res.body.mfa_required) {
    say('This account has two-factor authentication: finish at POST /auth/mfa/verify with "session": "cookie".');
    return;
  }
  say(res.status === 200 ? '' : res.body.error);
  ev.target.reset();
  await show();
});

$('register').addEventListener('submit', async (ev) => {
  ev.preventDefault();
  const res = await call('POST', '/auth/register', fields(ev.target));
  say(res.status === 202 ? `${res.body.message}. In development, GET /dev/mail?to=… shows it.` : res.body.error);
  if (res.status === 202) ev.target.reset();
});

$('new-project').addEventListener('submit', async (ev) => {
  ev.preventDefault();
  const res = await call('POST', '/projects', fields(ev.target));
  say(res.status === 201 ? '' : res.body.error);
  if (res.status === 201) ev.target.reset();
  await show();
});

$('logout').addEventListener('click', async () => {
  const res = await call('POST', '/auth/logout', {});
  say(res.status === 204 ? 'Logged out' : res.body.error);
  await show();
});

show();
