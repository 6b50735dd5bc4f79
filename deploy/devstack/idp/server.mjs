// Lotse's local OpenID provider, for `lotse up` and the tests: panva's certified oidc-provider with
// Lotse's clients, accounts from a JSON file, and plain login and registration pages.
//
// What it issues is what a municipality's provider (Keycloak, ...) must issue too: JWT access
// tokens for the audience `lotse` (resource indicators) carrying `tenant`, `roles` and `org`, and
// the same claims plus name, email and locale in the ID token. Production never runs this file.
//
// Settings (environment):
//   LOTSE_IDP_ISSUER                 issuer URL, e.g. http://127.0.0.1:8010 (also where it listens)
//   LOTSE_IDP_ACCOUNTS               accounts file: {"accounts": [...], "clients": [...]} (see README.md)
//   LOTSE_IDP_STATE_DIR              where the signing and cookie keys are kept across restarts
//   LOTSE_IDP_PORTAL_SECRET          client secret of `lotse-portal`
//   LOTSE_IDP_PORTAL_REDIRECT_URIS   its redirect URIs, space separated
//   LOTSE_IDP_PORTAL_LOGOUT_URIS     its post-logout redirect URIs, space separated
//   LOTSE_IDP_AUDIENCE               audience of the access tokens (default: lotse)

import { generateKeyPairSync, randomBytes, randomUUID, scryptSync, timingSafeEqual, createHash } from 'node:crypto';
import { chmodSync, existsSync, mkdirSync, readFileSync, renameSync, statSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';

import Provider, { errors, interactionPolicy } from 'oidc-provider';

const env = (name, fallback) => {
  const value = process.env[name] ?? fallback;
  if (value === undefined || value === '') {
    console.error(`lotse idp: refusing to start: ${name} is not set`);
    process.exit(78);
  }
  return value;
};

const ISSUER = env('LOTSE_IDP_ISSUER');
const ACCOUNTS_FILE = env('LOTSE_IDP_ACCOUNTS');
const STATE_DIR = env('LOTSE_IDP_STATE_DIR');
const PORTAL_SECRET = env('LOTSE_IDP_PORTAL_SECRET');
const PORTAL_REDIRECT_URIS = env('LOTSE_IDP_PORTAL_REDIRECT_URIS').split(/\s+/).filter(Boolean);
const FORM_TARGETS = [...new Set(PORTAL_REDIRECT_URIS.map((uri) => new URL(uri).origin))].join(' ');
const PORTAL_LOGOUT_URIS = (process.env.LOTSE_IDP_PORTAL_LOGOUT_URIS ?? '').split(/\s+/).filter(Boolean);
const AUDIENCE = process.env.LOTSE_IDP_AUDIENCE || 'lotse';
// The resource indicator (RFC 8707) of Lotse's APIs; clients need not send it (it is the default).
const RESOURCE = 'urn:lotse:api';
const RESOURCE_SCOPE = 'lotse';
const TENANT_PATTERN = /^[a-z][a-z0-9-]{1,39}$/;
const ROLES = new Set(['platform-admin', 'coordinator', 'initiative-admin', 'volunteer', 'partner', 'data-protection-officer']);
const MIN_PASSWORD_LENGTH = 10;
const MAX_FORM_BYTES = 16 * 1024;

// --- files: written whole and renamed, mode 600 (they hold passwords and keys) ------------------

function writePrivate(path, text) {
  mkdirSync(dirname(path), { recursive: true, mode: 0o700 });
  const draft = `${path}.${process.pid}.${randomBytes(4).toString('hex')}`;
  writeFileSync(draft, text, { mode: 0o600 });
  renameSync(draft, path);
  chmodSync(path, 0o600);
}

function stateKeys() {
  // Kept across restarts, so that tokens and sessions issued before a restart stay valid.
  const path = join(STATE_DIR, 'keys.json');
  if (!existsSync(path)) {
    const { privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
    const jwk = { ...privateKey.export({ format: 'jwk' }), kid: randomUUID(), use: 'sig', alg: 'RS256' };
    writePrivate(path, JSON.stringify({ jwks: { keys: [jwk] }, cookies: [randomBytes(32).toString('base64url')] }));
  }
  return JSON.parse(readFileSync(path, 'utf8'));
}

// --- accounts: read again whenever the file changes (the demo adds an organisation to an account) --

let cached = { stamp: '', data: { accounts: [], clients: [] } };

function directory() {
  if (!existsSync(ACCOUNTS_FILE)) return { accounts: [], clients: [] };
  const { mtimeMs, size } = statSync(ACCOUNTS_FILE);
  const stamp = `${mtimeMs}:${size}`;
  if (stamp !== cached.stamp) {
    const data = JSON.parse(readFileSync(ACCOUNTS_FILE, 'utf8'));
    cached = { stamp, data: { accounts: data.accounts ?? [], clients: data.clients ?? [] } };
  }
  return cached.data;
}

function saveAccount(account) {
  const data = existsSync(ACCOUNTS_FILE) ? JSON.parse(readFileSync(ACCOUNTS_FILE, 'utf8')) : {};
  data.accounts = [...(data.accounts ?? []), account];
  writePrivate(ACCOUNTS_FILE, `${JSON.stringify(data, null, 2)}\n`);
}

const sameText = (a, b) => String(a ?? '').toLowerCase() === String(b ?? '').toLowerCase();

function accountByLogin(login) {
  return directory().accounts.find((a) => sameText(a.username, login) || (a.email && sameText(a.email, login)));
}

function accountBySubject(sub) {
  return directory().accounts.find((a) => a.sub === sub);
}

// scrypt$N$r$p$salt$hash (base64url), the format lotse_devstack.idp.hash_password writes as well.
function hashPassword(password) {
  const salt = randomBytes(16);
  const hash = scryptSync(password, salt, 32, { N: 16384, r: 8, p: 1 });
  return `scrypt$16384$8$1$${salt.toString('base64url')}$${hash.toString('base64url')}`;
}

const DECOY_HASH = hashPassword(randomBytes(16).toString('hex'));

function passwordMatches(account, password) {
  // An unknown login costs the same work as a known one, so timing tells nobody which exist.
  const stored = account?.password_hash ?? (account?.password === undefined ? DECOY_HASH : undefined);
  if (stored !== undefined) {
    const [scheme, N, r, p, salt, hash] = stored.split('$');
    if (scheme !== 'scrypt') return false;
    const expected = Buffer.from(hash, 'base64url');
    const actual = scryptSync(password, Buffer.from(salt, 'base64url'), expected.length, {
      N: Number(N), r: Number(r), p: Number(p),
    });
    return account !== undefined && timingSafeEqual(actual, expected);
  }
  // A plain development password (the demo's, printed by `make run`): compare digests.
  const digest = (text) => createHash('sha256').update(String(text)).digest();
  return timingSafeEqual(digest(account.password), digest(password));
}

function lotseClaims(holder) {
  const claims = { roles: (holder.roles ?? []).filter((role) => ROLES.has(role)) };
  if (holder.tenant) claims.tenant = holder.tenant;
  if (holder.org) claims.org = holder.org;
  return claims;
}

// --- pages: plain HTML, German or English by ui_locales, no JavaScript ------------------------

const TEXT = {
  de: {
    signIn: 'Anmelden bei Lotse',
    login: 'Benutzername oder E-Mail-Adresse',
    password: 'Passwort',
    submit: 'Anmelden',
    wrong: 'Benutzername oder Passwort ist falsch.',
    missing: 'Bitte ausfüllen.',
    newHere: 'Neu hier?',
    createAccount: 'Konto anlegen',
    register: 'Konto anlegen bei Lotse',
    registerIntro: 'Mit diesem Konto melden Sie sich als Freiwillige oder Freiwilliger Ihrer Kommune an.',
    email: 'E-Mail-Adresse',
    name: 'Name',
    newPassword: `Passwort (mindestens ${MIN_PASSWORD_LENGTH} Zeichen)`,
    registerSubmit: 'Konto anlegen',
    badEmail: 'Bitte eine gültige E-Mail-Adresse angeben.',
    shortPassword: `Das Passwort muss mindestens ${MIN_PASSWORD_LENGTH} Zeichen lang sein.`,
    taken: 'Mit dieser E-Mail-Adresse lässt sich kein neues Konto anlegen. Haben Sie schon eines? Dann melden Sie sich an.',
    noTenant: 'Die Registrierung ist nur über das Portal Ihrer Kommune möglich.',
    haveAccount: 'Schon ein Konto?',
    logoutTitle: 'Abmelden',
    logoutQuestion: 'Möchten Sie sich bei Lotse abmelden?',
    logoutYes: 'Ja, abmelden',
    logoutNo: 'Nein, angemeldet bleiben',
    loggedOut: 'Sie sind abgemeldet.',
    error: 'Etwas ist schiefgegangen',
  },
  en: {
    signIn: 'Sign in to Lotse',
    login: 'User name or email address',
    password: 'Password',
    submit: 'Sign in',
    wrong: 'The user name or the password is wrong.',
    missing: 'Please fill this in.',
    newHere: 'New here?',
    createAccount: 'Create an account',
    register: 'Create a Lotse account',
    registerIntro: 'With this account you sign in as a volunteer of your municipality.',
    email: 'Email address',
    name: 'Name',
    newPassword: `Password (at least ${MIN_PASSWORD_LENGTH} characters)`,
    registerSubmit: 'Create account',
    badEmail: 'Please give a valid email address.',
    shortPassword: `The password must be at least ${MIN_PASSWORD_LENGTH} characters long.`,
    taken: 'No new account can be created with this email address. Do you have one already? Then sign in.',
    noTenant: 'Registration is only possible through your municipality’s portal.',
    haveAccount: 'Have an account?',
    logoutTitle: 'Sign out',
    logoutQuestion: 'Do you want to sign out of Lotse?',
    logoutYes: 'Yes, sign out',
    logoutNo: 'No, stay signed in',
    loggedOut: 'You are signed out.',
    error: 'Something went wrong',
  },
};

function language(uiLocales) {
  // The first of the person's languages that the pages speak; German first.
  for (const tag of String(uiLocales ?? '').split(/\s+/)) {
    const primary = tag.split('-')[0].toLowerCase();
    if (primary in TEXT) return primary;
  }
  return 'de';
}

const escape = (value) => String(value ?? '').replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);

function page(lang, title, body) {
  return `<!DOCTYPE html>
<html lang="${lang}">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>${escape(title)}</title>
<style>
body{font-family:system-ui,sans-serif;line-height:1.5;margin:0;padding:1rem;color:#1a1a1a;background:#fff}
main{max-width:26rem;margin:2rem auto}
label{display:block;font-weight:600;margin-top:1rem}
input{display:block;width:100%;box-sizing:border-box;font:inherit;padding:.5rem;border:2px solid #555;border-radius:4px}
input[aria-invalid=true]{border-color:#b00020}
.error{color:#b00020;margin:.25rem 0 0}
button{font:inherit;margin-top:1.5rem;padding:.6rem 1.2rem;border:0;border-radius:4px;background:#0b5394;color:#fff;cursor:pointer}
button.secondary{background:#e6e6e6;color:#1a1a1a}
a{color:#0b5394}
:focus-visible{outline:3px solid #f29900;outline-offset:2px}
</style>
</head>
<body>
<main>
${body}
</main>
</body>
</html>`;
}

function field({ id, label, type = 'text', value = '', autocomplete, error }) {
  const described = error ? ` aria-describedby="${id}-error" aria-invalid="true"` : '';
  const message = error ? `\n<p class="error" id="${id}-error">${escape(error)}</p>` : '';
  return `<label for="${id}">${escape(label)}</label>
<input id="${id}" name="${id}" type="${type}" value="${escape(value)}" autocomplete="${autocomplete}" required${described}>${message}`;
}

function loginPage(lang, uid, { login = '', errors: problems = {} } = {}, canRegister = false) {
  const t = TEXT[lang];
  const register = canRegister
    ? `<p>${escape(t.newHere)} <a href="/interaction/${uid}/register">${escape(t.createAccount)}</a></p>`
    : '';
  return page(lang, t.signIn, `<h1>${escape(t.signIn)}</h1>
<form method="post" action="/interaction/${uid}/login" novalidate>
${field({ id: 'login', label: t.login, value: login, autocomplete: 'username', error: problems.login })}
${field({ id: 'password', label: t.password, type: 'password', autocomplete: 'current-password', error: problems.password })}
<button type="submit">${escape(t.submit)}</button>
</form>
${register}`);
}

function registerPage(lang, uid, { email = '', name = '', errors: problems = {} } = {}) {
  const t = TEXT[lang];
  return page(lang, t.register, `<h1>${escape(t.register)}</h1>
<p>${escape(t.registerIntro)}</p>
<form method="post" action="/interaction/${uid}/register" novalidate>
${field({ id: 'email', label: t.email, type: 'email', value: email, autocomplete: 'email', error: problems.email })}
${field({ id: 'name', label: t.name, value: name, autocomplete: 'name', error: problems.name })}
${field({ id: 'password', label: t.newPassword, type: 'password', autocomplete: 'new-password', error: problems.password })}
<button type="submit">${escape(t.registerSubmit)}</button>
</form>
<p>${escape(t.haveAccount)} <a href="/interaction/${uid}">${escape(t.submit)}</a></p>`);
}

async function readForm(req) {
  const chunks = [];
  let size = 0;
  for await (const chunk of req) {
    size += chunk.length;
    if (size > MAX_FORM_BYTES) throw new errors.InvalidRequest('form too large');
    chunks.push(chunk);
  }
  return new URLSearchParams(Buffer.concat(chunks).toString('utf8'));
}

// --- the provider ------------------------------------------------------------------------------

const keys = stateKeys();
const policy = interactionPolicy.base();
// prompt=create (OpenID Connect "Initiating User Registration"): the registration page first.
policy.add(new interactionPolicy.Prompt({ name: 'create', requestable: true }), 0);
// The CLI is Lotse's own, not a third-party app on someone's device: no consent screen for it.
policy.get('consent').checks.remove('native_client_prompt');

function machineClients() {
  return directory().clients.map((client) => ({
    client_id: client.client_id,
    client_secret: client.client_secret,
    grant_types: ['client_credentials'],
    response_types: [],
    redirect_uris: [],
    token_endpoint_auth_method: 'client_secret_basic',
  }));
}

const provider = new Provider(ISSUER, {
  clients: [
    {
      client_id: 'lotse-portal',
      client_secret: PORTAL_SECRET,
      client_name: 'Lotse',
      redirect_uris: PORTAL_REDIRECT_URIS,
      post_logout_redirect_uris: PORTAL_LOGOUT_URIS,
      grant_types: ['authorization_code', 'refresh_token'],
      response_types: ['code'],
      token_endpoint_auth_method: 'client_secret_basic',
    },
    {
      // `lotse token --user`: a public client on the loopback, as native apps are (RFC 8252).
      client_id: 'lotse-cli',
      client_name: 'Lotse CLI',
      application_type: 'native',
      redirect_uris: ['http://127.0.0.1/lotse-cli/callback'],
      grant_types: ['authorization_code', 'refresh_token'],
      response_types: ['code'],
      token_endpoint_auth_method: 'none',
    },
    ...machineClients(),
  ],
  clientDefaults: { id_token_signed_response_alg: 'RS256' },
  jwks: keys.jwks,
  cookies: { keys: keys.cookies },
  pkce: { required: () => true },
  extraParams: ['lotse_tenant'],
  scopes: ['openid', 'offline_access', 'profile', 'email', RESOURCE_SCOPE],
  claims: {
    // Lotse's claims come with `openid` itself: a client that asks for nothing more still learns
    // whose municipality and which roles it deals with.
    openid: ['sub', 'tenant', 'roles', 'org'],
    profile: ['name', 'locale'],
    email: ['email', 'email_verified'],
  },
  // The claims of the requested scopes in the ID token too, not only from userinfo: the access
  // token is for Lotse's APIs (audience lotse), not for this provider's userinfo endpoint.
  conformIdTokenClaims: false,
  async findAccount(_ctx, sub) {
    const account = accountBySubject(sub);
    if (!account) return undefined;
    return {
      accountId: sub,
      async claims() {
        return {
          sub,
          name: account.name,
          email: account.email,
          email_verified: false,
          locale: account.locale ?? 'de',
          ...lotseClaims(account),
        };
      },
    };
  },
  async extraTokenClaims(_ctx, token) {
    if (token.accountId) {
      const account = accountBySubject(token.accountId);
      return account ? lotseClaims(account) : undefined;
    }
    // client_credentials: a partner system of one municipality.
    const client = directory().clients.find((c) => c.client_id === token.clientId);
    return client ? lotseClaims(client) : undefined;
  },
  features: {
    devInteractions: { enabled: false },
    clientCredentials: { enabled: true },
    revocation: { enabled: true },
    rpInitiatedLogout: {
      enabled: true,
      async logoutSource(ctx, form) {
        const lang = language(ctx.oidc.params?.ui_locales);
        const t = TEXT[lang];
        ctx.body = page(lang, t.logoutTitle, `<h1>${escape(t.logoutTitle)}</h1>
<p>${escape(t.logoutQuestion)}</p>
${form}
<button type="submit" form="op.logoutForm" name="logout" value="yes">${escape(t.logoutYes)}</button>
<button type="submit" form="op.logoutForm" class="secondary">${escape(t.logoutNo)}</button>`);
      },
      async postLogoutSuccessSource(ctx) {
        const lang = language(ctx.oidc.params?.ui_locales);
        ctx.body = page(lang, TEXT[lang].logoutTitle, `<h1>${escape(TEXT[lang].loggedOut)}</h1>`);
      },
    },
    resourceIndicators: {
      enabled: true,
      defaultResource: () => RESOURCE,
      useGrantedResource: () => true,
      async getResourceServerInfo(_ctx, resourceIndicator) {
        if (resourceIndicator !== RESOURCE) throw new errors.InvalidTarget();
        return {
          scope: RESOURCE_SCOPE,
          audience: AUDIENCE,
          accessTokenTTL: 60 * 60,
          accessTokenFormat: 'jwt',
          jwt: { sign: { alg: 'RS256' } },
        };
      },
    },
  },
  // Refresh tokens for Lotse's own clients, without the ceremony of offline_access.
  issueRefreshToken: async (_ctx, client) => client.grantTypeAllowed('refresh_token'),
  // Every refresh hands out a new refresh token and the used one is refused from then on (a second
  // use even ends the grant: oidc-provider's reuse detection), as providers that rotate refresh
  // tokens do; the portal must refresh once per session, however many requests find it expired.
  rotateRefreshToken: true,
  // Lotse's clients are its own (first party): nothing to consent to, every requested scope is granted.
  async loadExistingGrant(ctx) {
    const grantId = ctx.oidc.result?.consent?.grantId || ctx.oidc.session.grantIdFor(ctx.oidc.client.clientId);
    const grant = grantId
      ? await ctx.oidc.provider.Grant.find(grantId)
      : new ctx.oidc.provider.Grant({ clientId: ctx.oidc.client.clientId, accountId: ctx.oidc.session.accountId });
    grant.addOIDCScope([...ctx.oidc.requestParamOIDCScopes].join(' '));
    grant.addOIDCClaims([...ctx.oidc.requestParamClaims]);
    for (const [indicator, server] of Object.entries(ctx.oidc.resourceServers ?? {})) {
      grant.addResourceScope(indicator, server.scope);
    }
    await grant.save();
    return grant;
  },
  interactions: {
    policy,
    url: (_ctx, interaction) => `/interaction/${interaction.uid}`,
  },
  ttl: {
    AccessToken: 60 * 60,
    AuthorizationCode: 60,
    ClientCredentials: 60 * 60,
    IdToken: 60 * 60,
    Interaction: 60 * 60,
    Grant: 14 * 24 * 60 * 60,
    Session: 14 * 24 * 60 * 60,
    RefreshToken: 14 * 24 * 60 * 60,
  },
  async renderError(ctx, out) {
    const lang = language(ctx.oidc?.params?.ui_locales);
    ctx.type = 'html';
    ctx.body = page(lang, TEXT[lang].error, `<h1>${escape(TEXT[lang].error)}</h1>
<p>${escape(out.error)}: ${escape(out.error_description)}</p>`);
  },
});
// Behind nothing here; a proxy in front would need this to trust its X-Forwarded-* headers.
provider.proxy = false;

// --- interactions: login and registration ---------------------------------------------------

function html(ctx, body, status = 200) {
  ctx.status = status;
  ctx.type = 'html';
  ctx.set('Cache-Control', 'no-store');
  ctx.body = body;
}

async function login(ctx, details) {
  const lang = language(details.params.ui_locales);
  const t = TEXT[lang];
  const form = await readForm(ctx.req);
  const loginName = (form.get('login') ?? '').trim();
  const password = form.get('password') ?? '';
  const canRegister = TENANT_PATTERN.test(details.params.lotse_tenant ?? '');
  if (!loginName || !password) {
    const problems = { ...(!loginName && { login: t.missing }), ...(!password && { password: t.missing }) };
    return html(ctx, loginPage(lang, details.uid, { login: loginName, errors: problems }, canRegister), 400);
  }
  const account = accountByLogin(loginName);
  if (!passwordMatches(account, password)) {
    // One message for an unknown name and a wrong password: nobody learns which accounts exist.
    const problems = { password: t.wrong };
    return html(ctx, loginPage(lang, details.uid, { login: loginName, errors: problems }, canRegister), 401);
  }
  return provider.interactionFinished(ctx.req, ctx.res, { login: { accountId: account.sub } }, {
    mergeWithLastSubmission: false,
  });
}

async function register(ctx, details) {
  const lang = language(details.params.ui_locales);
  const t = TEXT[lang];
  const tenant = details.params.lotse_tenant;
  if (!TENANT_PATTERN.test(tenant ?? '')) {
    return html(ctx, page(lang, t.register, `<h1>${escape(t.register)}</h1>\n<p>${escape(t.noTenant)}</p>`), 400);
  }
  const form = await readForm(ctx.req);
  const email = (form.get('email') ?? '').trim();
  const name = (form.get('name') ?? '').trim();
  const password = form.get('password') ?? '';
  const problems = {};
  if (!/^[^\s@]+@[^\s@]+\.[^\s@]+$/.test(email)) problems.email = t.badEmail;
  else if (accountByLogin(email)) problems.email = t.taken;
  if (!name) problems.name = t.missing;
  if (password.length < MIN_PASSWORD_LENGTH) problems.password = t.shortPassword;
  if (Object.keys(problems).length) {
    return html(ctx, registerPage(lang, details.uid, { email, name, errors: problems }), 400);
  }
  const account = {
    username: email,
    password_hash: hashPassword(password),
    sub: randomUUID(),
    name,
    email,
    locale: lang,
    tenant,
    roles: ['volunteer'],
  };
  saveAccount(account);
  console.log(`lotse idp: registered a volunteer account of ${tenant}`);
  const result = { login: { accountId: account.sub } };
  if (details.prompt.name === 'create') result.create = {};
  return provider.interactionFinished(ctx.req, ctx.res, result, { mergeWithLastSubmission: false });
}

async function grantEverything(ctx, details) {
  const { missingOIDCScope, missingOIDCClaims, missingResourceScopes } = details.prompt.details;
  const grant = details.grantId
    ? await provider.Grant.find(details.grantId)
    : new provider.Grant({ accountId: details.session.accountId, clientId: details.params.client_id });
  if (missingOIDCScope) grant.addOIDCScope(missingOIDCScope.join(' '));
  if (missingOIDCClaims) grant.addOIDCClaims(missingOIDCClaims);
  for (const [indicator, scopes] of Object.entries(missingResourceScopes ?? {})) {
    grant.addResourceScope(indicator, scopes.join(' '));
  }
  const grantId = await grant.save();
  return provider.interactionFinished(ctx.req, ctx.res, { consent: { grantId } }, { mergeWithLastSubmission: true });
}

provider.use(async (ctx, next) => {
  const match = ctx.path.match(/^\/interaction\/([\w-]+)(?:\/(login|register))?$/);
  if (!match) return next();
  ctx.set('X-Frame-Options', 'DENY');
  // The login form's answer redirects on to the client (the portal): browsers check form-action
  // along the redirects, so the clients' origins belong in it.
  ctx.set('Content-Security-Policy', `default-src 'none'; style-src 'unsafe-inline'; form-action 'self' ${FORM_TARGETS}`);
  const details = await provider.interactionDetails(ctx.req, ctx.res);
  const [, uid, action] = match;
  if (details.uid !== uid) throw new errors.SessionNotFound('interaction and cookie disagree');
  const lang = language(details.params.ui_locales);
  const canRegister = TENANT_PATTERN.test(details.params.lotse_tenant ?? '');
  if (details.prompt.name === 'consent') {
    // First-party clients only (see loadExistingGrant): grant what was asked for and go on.
    return grantEverything(ctx, details);
  }
  if (ctx.method === 'GET') {
    const registering = action === 'register' || (!action && details.prompt.name === 'create');
    if (registering && !canRegister) {
      const t = TEXT[lang];
      return html(ctx, page(lang, t.register, `<h1>${escape(t.register)}</h1>\n<p>${escape(t.noTenant)}</p>`), 400);
    }
    return html(ctx, registering ? registerPage(lang, uid) : loginPage(lang, uid, {}, canRegister));
  }
  if (ctx.method === 'POST' && action === 'login') return login(ctx, details);
  if (ctx.method === 'POST' && action === 'register') return register(ctx, details);
  ctx.status = 405;
  return undefined;
});

const { port } = new URL(ISSUER);
provider.listen(Number(port) || 80, '127.0.0.1', () => {
  console.log(`lotse idp: listening on ${ISSUER} (discovery: ${ISSUER}/.well-known/openid-configuration)`);
});
