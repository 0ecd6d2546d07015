// SPDX-License-Identifier: MIT
// A local OpenID provider with fixed test users, for the Portcullis demo and end-to-end tests.
//
// Configured from the environment:
//   IDP_PORT                        listen port (default 18900)
//   IDP_BIND                        listen address (default 127.0.0.1; 0.0.0.0 in containers)
//   IDP_ISSUER                      issuer URL (default http://127.0.0.1:<port>)
//   IDP_CLIENT_ID, IDP_CLIENT_SECRET  the one registered client (client_secret_basic)
//   IDP_REDIRECT_URIS               comma list of allowed redirect_uri values
//   IDP_POST_LOGOUT_REDIRECT_URIS   comma list of allowed post_logout_redirect_uri values
//   IDP_CLIENT_AUTH_METHOD          client_secret_basic (default) or client_secret_post
//   IDP_USERS_FILE                  users (default ./users.json); read again on every lookup,
//                                   so a test may edit a copy to change a user's claims
//   IDP_JWKS_FILE                   private JWKS; loaded when present, else generated and
//                                   written there (mode 0600); without it a fresh RSA key
//                                   is generated at every start
//   IDP_REFRESH_TOKENS              0 to issue no refresh tokens (default: always issue them)
//   IDP_ACCESS_TOKEN_TTL, IDP_ID_TOKEN_TTL, IDP_REFRESH_TOKEN_TTL  seconds (3600, 3600, 14 d)
//
// Interactions are plain HTML forms (no JavaScript needed): the login form at
// /interaction/<uid> posts `login` and `password` to /interaction/<uid>/login, consent is
// granted automatically, and the sign-out confirmation is a form that submits itself (a script
// posts its `xsrf` and `logout=yes` fields to its action).

import { generateKeyPairSync, randomBytes, timingSafeEqual, createHash } from 'node:crypto';
import { readFileSync, writeFileSync, existsSync, statSync } from 'node:fs';
import { createServer } from 'node:http';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

import Provider from 'oidc-provider';

const HERE = dirname(fileURLToPath(import.meta.url));
const USERS_FILE_MAX = 1024 * 1024;
const JWKS_FILE_MAX = 256 * 1024;
const FORM_BODY_MAX = 8 * 1024;
const FIELD_MAX = 256;

function log(message) {
    process.stdout.write(`${new Date().toISOString()} dev-idp ${message}\n`);
}

function envList(name) {
    return (process.env[name] || '')
        .split(',')
        .map((s) => s.trim())
        .filter((s) => s.length > 0);
}

function envSeconds(name, fallback) {
    const raw = process.env[name];
    if (raw === undefined || raw === '') {
        return fallback;
    }
    const value = Number.parseInt(raw, 10);
    if (!Number.isInteger(value) || value <= 0 || String(value) !== raw.trim()) {
        throw new Error(`${name} must be a positive number of seconds`);
    }
    return value;
}

const port = Number.parseInt(process.env.IDP_PORT || '18900', 10);
if (!Number.isInteger(port) || port <= 0 || port > 65535) {
    throw new Error('IDP_PORT must be a port number');
}
const bind = process.env.IDP_BIND || '127.0.0.1';
const issuer = (process.env.IDP_ISSUER || `http://127.0.0.1:${port}`).replace(/\/$/, '');
const clientId = process.env.IDP_CLIENT_ID || 'portcullis';
const clientSecret = process.env.IDP_CLIENT_SECRET || 'portcullis-dev-secret';
const redirectUris = envList('IDP_REDIRECT_URIS');
const postLogoutRedirectUris = envList('IDP_POST_LOGOUT_REDIRECT_URIS');
const usersFile = process.env.IDP_USERS_FILE || join(HERE, 'users.json');
const jwksFile = process.env.IDP_JWKS_FILE || '';
const issueRefreshTokens = process.env.IDP_REFRESH_TOKENS !== '0';
const clientAuthMethod = process.env.IDP_CLIENT_AUTH_METHOD || 'client_secret_basic';

if (!['client_secret_basic', 'client_secret_post'].includes(clientAuthMethod)) {
    throw new Error('IDP_CLIENT_AUTH_METHOD must be client_secret_basic or client_secret_post');
}
if (redirectUris.length === 0) {
    throw new Error('IDP_REDIRECT_URIS must list at least one redirect URI');
}

// ---- users --------------------------------------------------------------------------------

function loadUsers() {
    if (statSync(usersFile).size > USERS_FILE_MAX) {
        throw new Error(`${usersFile} is larger than ${USERS_FILE_MAX} bytes`);
    }
    const users = JSON.parse(readFileSync(usersFile, 'utf8'));
    if (!Array.isArray(users)) {
        throw new Error(`${usersFile} must hold a JSON array of users`);
    }
    return users;
}

function findUserBySub(sub) {
    return loadUsers().find((u) => u.sub === sub);
}

// `login` may be the full email or its local part, in any case
function findUserByLogin(login) {
    const wanted = login.trim().toLowerCase();
    return loadUsers().find((u) => {
        const email = String(u.email).toLowerCase();
        return email === wanted || email.split('@')[0] === wanted;
    });
}

// compares digests so neither the length nor the content of the password leaks through timing
function passwordMatches(user, password) {
    const a = createHash('sha256').update(String(user.password)).digest();
    const b = createHash('sha256').update(password).digest();
    return timingSafeEqual(a, b);
}

function userClaims(user) {
    return {
        sub: user.sub,
        email: user.email,
        email_verified: user.email_verified !== false,
        name: user.name,
        groups: Array.isArray(user.groups) ? user.groups : [],
    };
}

// ---- signing keys -------------------------------------------------------------------------

function generateJwks() {
    const { privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
    const jwk = privateKey.export({ format: 'jwk' });
    jwk.kid = randomBytes(8).toString('hex');
    jwk.alg = 'RS256';
    jwk.use = 'sig';
    return { keys: [jwk] };
}

function loadJwks() {
    if (jwksFile === '') {
        return generateJwks();
    }
    if (existsSync(jwksFile)) {
        if (statSync(jwksFile).size > JWKS_FILE_MAX) {
            throw new Error(`${jwksFile} is larger than ${JWKS_FILE_MAX} bytes`);
        }
        return JSON.parse(readFileSync(jwksFile, 'utf8'));
    }
    const jwks = generateJwks();
    writeFileSync(jwksFile, JSON.stringify(jwks), { mode: 0o600 });
    return jwks;
}

// ---- pages --------------------------------------------------------------------------------

function escapeHtml(value) {
    return String(value)
        .replace(/&/g, '&amp;')
        .replace(/</g, '&lt;')
        .replace(/>/g, '&gt;')
        .replace(/"/g, '&quot;')
        .replace(/'/g, '&#39;');
}

function page(title, body) {
    return `<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>${escapeHtml(title)}</title>
<style>
body { font-family: system-ui, sans-serif; max-width: 26rem; margin: 3rem auto; color: #222; }
h1 { font-size: 1.3rem; }
label { display: block; margin-top: 0.8rem; }
input[type=text], input[type=password] { width: 100%; padding: 0.4rem; box-sizing: border-box; }
button { margin-top: 1rem; padding: 0.5rem 1.2rem; }
.error { color: #a00; }
.hint { color: #666; font-size: 0.85rem; margin-top: 2rem; }
</style>
</head>
<body>
${body}
</body>
</html>
`;
}

function loginPage(uid, clientName, login, error) {
    const errorLine = error ? `<p class="error">${escapeHtml(error)}</p>` : '';
    return page('Sign in', `<h1>Sign in to ${escapeHtml(clientName)}</h1>
${errorLine}
<form method="post" action="/interaction/${escapeHtml(uid)}/login" autocomplete="off">
<label>Email
<input type="text" name="login" value="${escapeHtml(login)}" autofocus required></label>
<label>Password <input type="password" name="password" required></label>
<button type="submit">Sign in</button>
</form>
<p class="hint">Portcullis dev IdP. Test users: alice@example.com, bob@example.com,
mallory@evil.example; the password is the part before the @ followed by "-password".</p>`);
}

function send(res, status, contentType, body) {
    res.statusCode = status;
    res.setHeader('Content-Type', contentType);
    res.setHeader('Cache-Control', 'no-store');
    res.setHeader('Content-Length', Buffer.byteLength(body));
    res.end(body);
}

function readForm(req) {
    return new Promise((resolve, reject) => {
        let size = 0;
        const chunks = [];
        req.on('data', (chunk) => {
            size += chunk.length;
            if (size > FORM_BODY_MAX) {
                reject(new Error('form body too large'));
                req.destroy();
                return;
            }
            chunks.push(chunk);
        });
        req.on('end', () => resolve(new URLSearchParams(Buffer.concat(chunks).toString('utf8'))));
        req.on('error', reject);
    });
}

// ---- provider -----------------------------------------------------------------------------

const configuration = {
    clients: [
        {
            client_id: clientId,
            client_secret: clientSecret,
            client_name: 'Portcullis',
            redirect_uris: redirectUris,
            post_logout_redirect_uris: postLogoutRedirectUris,
            grant_types: ['authorization_code', 'refresh_token'],
            response_types: ['code'],
            token_endpoint_auth_method: clientAuthMethod,
        },
    ],
    // discovery lists only this method, so a relying party can be tested with either
    clientAuthMethods: [clientAuthMethod],
    responseTypes: ['code'],
    jwks: loadJwks(),
    cookies: { keys: [randomBytes(32).toString('base64url')] },
    scopes: ['openid', 'offline_access', 'profile', 'email', 'groups'],
    claims: {
        openid: ['sub'],
        email: ['email', 'email_verified', 'groups'],
        profile: ['name', 'groups'],
        groups: ['groups'],
    },
    // put the scope-granted claims into the ID token too, not only into userinfo
    conformIdTokenClaims: false,
    pkce: { required: () => true },
    features: {
        devInteractions: { enabled: false },
        revocation: { enabled: true },
        rpInitiatedLogout: {
            enabled: true,
            logoutSource: async (ctx, form) => {
                // the provider's form holds the xsrf field; add the "yes" answer and submit it
                const filled = form.replace('</form>',
                    '<input type="hidden" name="logout" value="yes">'
                    + '<button type="submit">Sign out</button></form>');
                ctx.type = 'html';
                ctx.body = page('Sign out', `<h1>Signing you out of ${escapeHtml(ctx.host)}</h1>
${filled}
<script>document.getElementById('op.logoutForm').submit();</script>`);
            },
            postLogoutSuccessSource: async (ctx) => {
                ctx.type = 'html';
                ctx.body = page('Signed out', '<h1>You are signed out.</h1>');
            },
        },
    },
    // oidc-provider drops offline_access unless the request says prompt=consent (OIDC Core
    // 11), which Portcullis does not send: issue refresh tokens to the client regardless,
    // unless IDP_REFRESH_TOKENS=0, and keep them valid when the browser session at the IdP ends
    issueRefreshToken: async (ctx, client) => (
        issueRefreshTokens && client.grantTypeAllowed('refresh_token')
    ),
    expiresWithSession: async () => false,
    findAccount: async (ctx, sub) => {
        const user = findUserBySub(sub);
        if (user === undefined) {
            return undefined;
        }
        return {
            accountId: user.sub,
            claims: async () => userClaims(user),
        };
    },
    interactions: {
        url: async (ctx, interaction) => `/interaction/${interaction.uid}`,
    },
    ttl: {
        AccessToken: envSeconds('IDP_ACCESS_TOKEN_TTL', 3600),
        AuthorizationCode: 60,
        IdToken: envSeconds('IDP_ID_TOKEN_TTL', 3600),
        RefreshToken: envSeconds('IDP_REFRESH_TOKEN_TTL', 14 * 24 * 3600),
        Interaction: 600,
        Session: 14 * 24 * 3600,
        Grant: 14 * 24 * 3600,
    },
    clientBasedCORS: () => false,
    renderError: async (ctx, out, error) => {
        log(`error page: ${out.error}: ${out.error_description || ''} (${error.message})`);
        ctx.type = 'html';
        ctx.body = page('Error', `<h1>Something went wrong</h1>
<p class="error">${escapeHtml(out.error)}: ${escapeHtml(out.error_description || '')}</p>`);
    },
};

const provider = new Provider(issuer, configuration);

provider.on('server_error', (ctx, err) => log(`server_error: ${err.stack}`));
for (const event of ['grant.error', 'authorization.error', 'end_session.error', 'userinfo.error']) {
    provider.on(event, (ctx, err) => log(`${event}: ${err.name}: ${err.message}`));
}

// the grant covers whatever the interaction says is missing: consent is always given
async function grantConsent(req, res, details) {
    const { prompt: { details: missing }, params, session } = details;
    let grant;
    if (details.grantId) {
        grant = await provider.Grant.find(details.grantId);
    } else {
        grant = new provider.Grant({ accountId: session.accountId, clientId: params.client_id });
    }
    if (missing.missingOIDCScope) {
        grant.addOIDCScope(missing.missingOIDCScope.join(' '));
    }
    if (missing.missingOIDCClaims) {
        grant.addOIDCClaims(missing.missingOIDCClaims);
    }
    if (missing.missingResourceScopes) {
        for (const [indicator, scopes] of Object.entries(missing.missingResourceScopes)) {
            grant.addResourceScope(indicator, scopes.join(' '));
        }
    }
    const grantId = await grant.save();

    const consent = {};
    if (!details.grantId) {
        consent.grantId = grantId;
    }
    await provider.interactionFinished(req, res, { consent }, { mergeWithLastSubmission: true });
}

async function showInteraction(req, res, uid) {
    const details = await provider.interactionDetails(req, res);
    if (details.uid !== uid) {
        send(res, 400, 'text/plain; charset=utf-8', 'interaction mismatch\n');
        return;
    }
    if (details.prompt.name === 'login') {
        const hint = details.params.login_hint || '';
        send(res, 200, 'text/html; charset=utf-8', loginPage(uid, 'Portcullis', hint, ''));
        return;
    }
    await grantConsent(req, res, details);
}

async function submitLogin(req, res, uid) {
    const details = await provider.interactionDetails(req, res);
    if (details.uid !== uid || details.prompt.name !== 'login') {
        send(res, 400, 'text/plain; charset=utf-8', 'interaction mismatch\n');
        return;
    }
    const form = await readForm(req);
    const login = (form.get('login') || '').slice(0, FIELD_MAX);
    const password = (form.get('password') || '').slice(0, FIELD_MAX);
    const user = login === '' ? undefined : findUserByLogin(login);
    if (user === undefined || !passwordMatches(user, password)) {
        log(`login refused for ${JSON.stringify(login)}`);
        send(res, 401, 'text/html; charset=utf-8',
            loginPage(uid, 'Portcullis', login, 'Unknown user or wrong password.'));
        return;
    }
    log(`login ok for ${user.email}`);
    await provider.interactionFinished(req, res, { login: { accountId: user.sub } },
        { mergeWithLastSubmission: false });
}

async function interactionRoute(req, res, path) {
    const show = /^\/interaction\/([A-Za-z0-9_-]{1,64})$/.exec(path);
    const submit = /^\/interaction\/([A-Za-z0-9_-]{1,64})\/login$/.exec(path);
    try {
        if (show !== null && req.method === 'GET') {
            await showInteraction(req, res, show[1]);
        } else if (submit !== null && req.method === 'POST') {
            await submitLogin(req, res, submit[1]);
        } else {
            send(res, 404, 'text/plain; charset=utf-8', 'not found\n');
        }
    } catch (err) {
        // an expired or unknown interaction (no cookie, too late) lands here
        log(`interaction failed: ${err.name}: ${err.message}`);
        if (!res.headersSent) {
            send(res, 400, 'text/html; charset=utf-8',
                page('Sign-in expired', `<h1>This sign-in attempt is no longer valid</h1>
<p>${escapeHtml(err.message)}. Go back to the application and try again.</p>`));
        }
    }
}

const handleProvider = provider.callback();

const server = createServer((req, res) => {
    const started = Date.now();
    const path = (req.url || '/').split('?')[0];
    res.on('finish', () => {
        log(`${req.method} ${path} ${res.statusCode} ${Date.now() - started}ms`);
    });

    if (path === '/healthz') {
        send(res, 200, 'text/plain; charset=utf-8', 'ok\n');
        return;
    }
    if (path.startsWith('/interaction/')) {
        interactionRoute(req, res, path);
        return;
    }
    handleProvider(req, res);
});

server.listen(port, bind, () => {
    log(`issuer ${issuer} listening on ${bind}:${port}, client ${clientId}, `
        + `redirect_uris ${redirectUris.join(' ')}`);
});

function shutdown(signal) {
    log(`${signal}: stopping`);
    server.close(() => process.exit(0));
    setTimeout(() => process.exit(0), 2000).unref();
}
process.on('SIGTERM', () => shutdown('SIGTERM'));
process.on('SIGINT', () => shutdown('SIGINT'));
