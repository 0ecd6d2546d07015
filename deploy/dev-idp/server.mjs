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
//   IDP_TEST_CONTROLS               1 to serve the fault controls below (tests only)
//
// Test controls (IDP_TEST_CONTROLS=1, loopback clients only), for provider faults the real
// provider cannot be made to show. Each takes a JSON body and answers JSON:
//   POST /__test/rotate-key   sign with a new key (new kid) from now on; the JWKS lists both
//   POST /__test/fault        {"endpoint":"token"|"jwks","kind":K,"count":N}: the next N requests
//                             to that endpoint fail; token kinds invalid_grant, hang (no answer
//                             for 60 s), malformed (200 with broken JSON); jwks kind unavailable
//   POST /__test/token-edit   {"count":N, "iat":s, "nbf":s, "exp":s, "kid":k, "expires_in":s}:
//                             the next N successful token answers get their ID token re-signed
//                             with iat/nbf/exp set to now + s (and the header kid k), or
//                             expires_in replaced
//   GET  /__test/stats        requests seen per endpoint {"token":n,"jwks":n,"userinfo":n}
//   POST /__test/reset        clears every pending fault and edit
//
// Interactions are plain HTML forms (no JavaScript needed): the login form at
// /interaction/<uid> posts `login` and `password` to /interaction/<uid>/login, consent is
// granted automatically, and the sign-out confirmation is a form that submits itself (a script
// posts its `xsrf` and `logout=yes` fields to its action).

import {
    generateKeyPairSync, randomBytes, timingSafeEqual, createHash, createPrivateKey, sign,
} from 'node:crypto';
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
const CONTROL_BODY_MAX = 4 * 1024;
const HANG_MS = 60 * 1000;
const KEYS_KEPT = 3; // a rotation keeps the newest keys in the published set

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
const testControls = process.env.IDP_TEST_CONTROLS === '1';

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

// one cookie key for every provider instance, so a key rotation keeps interactions alive
const cookieKeys = [randomBytes(32).toString('base64url')];
let currentJwks = loadJwks();

const makeConfiguration = (jwks) => ({
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
    jwks,
    cookies: { keys: cookieKeys },
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
});

// the default memory adapter keeps its store per process, so a new instance (after a key
// rotation) still knows every grant, session and code of the old one
function makeProvider(jwks) {
    const p = new Provider(issuer, makeConfiguration(jwks));
    p.on('server_error', (ctx, err) => log(`server_error: ${err.stack}`));
    for (const event of ['grant.error', 'authorization.error', 'end_session.error',
        'userinfo.error']) {
        p.on(event, (ctx, err) => log(`${event}: ${err.name}: ${err.message}`));
    }
    return p;
}

let provider = makeProvider(currentJwks);

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

let handleProvider = provider.callback();

// ---- test controls ------------------------------------------------------------------------

const faults = { token: [], jwks: [] };
const tokenEdits = [];
const stats = { token: 0, jwks: 0, userinfo: 0 };
const TOKEN_FAULTS = ['invalid_grant', 'hang', 'malformed'];
const JWKS_FAULTS = ['unavailable'];

function endpointOf(path) {
    if (path === '/token') {
        return 'token';
    }
    if (path === '/jwks') {
        return 'jwks';
    }
    return path === '/me' ? 'userinfo' : null;
}

function isLoopback(req) {
    const a = req.socket.remoteAddress || '';
    return a === '::1' || a.startsWith('127.') || a.startsWith('::ffff:127.');
}

function readJson(req) {
    return new Promise((resolve, reject) => {
        let size = 0;
        const chunks = [];
        req.on('data', (chunk) => {
            size += chunk.length;
            if (size > CONTROL_BODY_MAX) {
                reject(new Error('control body too large'));
                req.destroy();
                return;
            }
            chunks.push(chunk);
        });
        req.on('end', () => {
            const text = Buffer.concat(chunks).toString('utf8');
            try {
                resolve(text === '' ? {} : JSON.parse(text));
            } catch (err) {
                reject(err);
            }
        });
        req.on('error', reject);
    });
}

function count(value) {
    const n = value === undefined ? 1 : value;
    if (!Number.isInteger(n) || n < 1 || n > 1000) {
        throw new Error('count must be an integer from 1 to 1000');
    }
    return n;
}

function rotateKey() {
    const fresh = generateJwks().keys[0];
    currentJwks = { keys: [fresh, ...currentJwks.keys].slice(0, KEYS_KEPT) };
    if (jwksFile !== '') {
        writeFileSync(jwksFile, JSON.stringify(currentJwks), { mode: 0o600 });
    }
    provider = makeProvider(currentJwks);
    handleProvider = provider.callback();
    log(`test control: signing key rotated to kid ${fresh.kid}`);
    return { kid: fresh.kid };
}

function addFault(body) {
    const kinds = { token: TOKEN_FAULTS, jwks: JWKS_FAULTS }[body.endpoint];
    if (kinds === undefined || !kinds.includes(body.kind)) {
        throw new Error('unknown endpoint or fault kind');
    }
    for (let i = count(body.count); i > 0; i--) {
        faults[body.endpoint].push(body.kind);
    }
    log(`test control: ${body.endpoint} fault ${body.kind} x${count(body.count)}`);
    return { pending: faults[body.endpoint].length };
}

function addTokenEdit(body) {
    const edit = {};
    for (const name of ['iat', 'nbf', 'exp', 'expires_in']) {
        if (body[name] !== undefined) {
            if (!Number.isInteger(body[name])) {
                throw new Error(`${name} must be an integer`);
            }
            edit[name] = body[name];
        }
    }
    if (body.kid !== undefined) {
        edit.kid = String(body.kid).slice(0, FIELD_MAX);
    }
    for (let i = count(body.count); i > 0; i--) {
        tokenEdits.push(edit);
    }
    return { pending: tokenEdits.length };
}

async function controlRoute(req, res, path) {
    if (!isLoopback(req)) {
        send(res, 403, 'text/plain; charset=utf-8', 'loopback only\n');
        return;
    }
    try {
        let out;
        if (path === '/__test/stats' && req.method === 'GET') {
            out = stats;
        } else if (req.method !== 'POST') {
            send(res, 405, 'text/plain; charset=utf-8', 'method not allowed\n');
            return;
        } else if (path === '/__test/rotate-key') {
            out = rotateKey();
        } else if (path === '/__test/fault') {
            out = addFault(await readJson(req));
        } else if (path === '/__test/token-edit') {
            out = addTokenEdit(await readJson(req));
        } else if (path === '/__test/reset') {
            faults.token.length = 0;
            faults.jwks.length = 0;
            tokenEdits.length = 0;
            out = {};
        } else {
            send(res, 404, 'text/plain; charset=utf-8', 'not found\n');
            return;
        }
        send(res, 200, 'application/json', JSON.stringify(out));
    } catch (err) {
        send(res, 400, 'text/plain; charset=utf-8', `${err.message}\n`);
    }
}

// answers a planned fault instead of the provider; true when it did
function injectFault(req, res, endpoint) {
    const kind = endpoint !== null && faults[endpoint] ? faults[endpoint].shift() : undefined;
    if (kind === undefined) {
        return false;
    }
    log(`test control: injecting ${endpoint} fault ${kind}`);
    if (kind === 'invalid_grant') {
        send(res, 400, 'application/json', JSON.stringify({
            error: 'invalid_grant', error_description: 'grant request is invalid (test control)',
        }));
    } else if (kind === 'malformed') {
        send(res, 200, 'application/json', '{"access_token": "abc", "id_token": ');
    } else if (kind === 'unavailable') {
        send(res, 503, 'text/plain; charset=utf-8', 'unavailable (test control)\n');
    } else {
        const timer = setTimeout(() => res.destroy(), HANG_MS);
        res.on('close', () => clearTimeout(timer));
    }
    return true;
}

function b64json(value) {
    return Buffer.from(JSON.stringify(value)).toString('base64url');
}

// re-signs an ID token with the current signing key after changing its times and kid
function resignIdToken(token, edit) {
    const [h, p] = token.split('.');
    const header = JSON.parse(Buffer.from(h, 'base64url').toString('utf8'));
    const claims = JSON.parse(Buffer.from(p, 'base64url').toString('utf8'));
    const now = Math.floor(Date.now() / 1000);
    for (const name of ['iat', 'nbf', 'exp']) {
        if (edit[name] !== undefined) {
            claims[name] = now + edit[name];
        }
    }
    const key = currentJwks.keys[0];
    header.alg = 'RS256';
    header.kid = edit.kid !== undefined ? edit.kid : key.kid;
    const input = `${b64json(header)}.${b64json(claims)}`;
    const signature = sign('sha256', Buffer.from(input), createPrivateKey({ key, format: 'jwk' }));
    return `${input}.${signature.toString('base64url')}`;
}

// koa ends the response with the whole JSON body while its headers are still unsent
function editTokenResponse(res, edit) {
    const end = res.end.bind(res);
    res.end = (chunk, ...rest) => {
        if (chunk !== undefined && chunk !== null && res.statusCode === 200 && !res.headersSent) {
            try {
                const doc = JSON.parse(chunk.toString());
                if (typeof doc.id_token === 'string') {
                    doc.id_token = resignIdToken(doc.id_token, edit);
                }
                if (edit.expires_in !== undefined) {
                    doc.expires_in = edit.expires_in;
                }
                const text = JSON.stringify(doc);
                res.setHeader('Content-Length', Buffer.byteLength(text));
                log('test control: token answer edited');
                return end(text, ...rest);
            } catch (err) {
                log(`test control: token answer left as is: ${err.message}`);
            }
        }
        return end(chunk, ...rest);
    };
}

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
    if (testControls) {
        if (path.startsWith('/__test/')) {
            controlRoute(req, res, path);
            return;
        }
        const endpoint = endpointOf(path);
        if (endpoint !== null) {
            stats[endpoint]++;
        }
        if (injectFault(req, res, endpoint)) {
            return;
        }
        if (endpoint === 'token' && tokenEdits.length > 0) {
            editTokenResponse(res, tokenEdits.shift());
        }
    }
    handleProvider(req, res);
});

server.listen(port, bind, () => {
    log(`issuer ${issuer} listening on ${bind}:${port}, client ${clientId}, `
        + `redirect_uris ${redirectUris.join(' ')}${testControls ? ', TEST CONTROLS ON' : ''}`);
});

function shutdown(signal) {
    log(`${signal}: stopping`);
    server.close(() => process.exit(0));
    setTimeout(() => process.exit(0), 2000).unref();
}
process.on('SIGTERM', () => shutdown('SIGTERM'));
process.on('SIGINT', () => shutdown('SIGINT'));
