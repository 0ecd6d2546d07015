// SPDX-License-Identifier: MIT
// A protected sample app: shows every request's method, path and headers, the identity first.
//
//   APP_PORT (default 18080), APP_BIND (default 127.0.0.1; 0.0.0.0 in containers),
//   APP_NAME (shown in the page title; default "Portcullis sample app")
//
// Every path answers 200 with an HTML page, or with JSON when the path is /headers.json or the
// Accept header asks for application/json. Headers named X-Pomerium-* are listed first and
// highlighted; the identity assertion's payload is decoded for display only (it is not
// verified here: an app that trusts it must check its signature against
// /.well-known/pomerium/jwks.json).

import { createServer } from 'node:http';

const port = Number.parseInt(process.env.APP_PORT || '18080', 10);
const bind = process.env.APP_BIND || '127.0.0.1';
const appName = process.env.APP_NAME || 'Portcullis sample app';
const ASSERTION_MAX = 16 * 1024;

if (!Number.isInteger(port) || port <= 0 || port > 65535) {
    throw new Error('APP_PORT must be a port number');
}

function escapeHtml(value) {
    return String(value)
        .replace(/&/g, '&amp;')
        .replace(/</g, '&lt;')
        .replace(/>/g, '&gt;')
        .replace(/"/g, '&quot;')
        .replace(/'/g, '&#39;');
}

// the request's headers as [name, value] pairs in arrival order, repeated names kept
function headerPairs(req) {
    const pairs = [];
    for (let i = 0; i + 1 < req.rawHeaders.length; i += 2) {
        pairs.push([req.rawHeaders[i], req.rawHeaders[i + 1]]);
    }
    return pairs;
}

function isIdentityHeader(name) {
    return name.toLowerCase().startsWith('x-pomerium-');
}

function decodeAssertion(token) {
    if (typeof token !== 'string' || token.length > ASSERTION_MAX) {
        return null;
    }
    const parts = token.split('.');
    if (parts.length !== 3) {
        return null;
    }
    try {
        return {
            header: JSON.parse(Buffer.from(parts[0], 'base64url').toString('utf8')),
            payload: JSON.parse(Buffer.from(parts[1], 'base64url').toString('utf8')),
        };
    } catch {
        return null;
    }
}

function describe(req) {
    const url = new URL(req.url || '/', 'http://app.invalid');
    const headers = headerPairs(req);
    const identity = headers.filter(([name]) => isIdentityHeader(name));
    return {
        app: appName,
        method: req.method,
        path: url.pathname,
        query: url.search,
        remote_address: req.socket.remoteAddress,
        headers,
        identity: Object.fromEntries(identity.map(([name, value]) => [name.toLowerCase(), value])),
        assertion: decodeAssertion(req.headers['x-pomerium-jwt-assertion']),
    };
}

function wantsJson(req, path) {
    if (path === '/headers.json') {
        return true;
    }
    const accept = (req.headers.accept || '').toLowerCase();
    return accept.includes('application/json') && !accept.includes('text/html');
}

function headerRows(headers) {
    const sorted = [
        ...headers.filter(([name]) => isIdentityHeader(name)),
        ...headers.filter(([name]) => !isIdentityHeader(name)),
    ];
    return sorted.map(([name, value]) => {
        const cls = isIdentityHeader(name) ? ' class="identity"' : '';
        return `<tr${cls}><th>${escapeHtml(name)}</th><td>${escapeHtml(value)}</td></tr>`;
    }).join('\n');
}

function renderHtml(info) {
    const email = info.identity['x-pomerium-claim-email'];
    const who = email
        ? `<p class="who">Signed in as <strong>${escapeHtml(email)}</strong></p>`
        : '<p class="who anonymous">No identity headers: this request was not authenticated.</p>';
    const assertion = info.assertion === null
        ? ''
        : `<h2>Identity assertion (decoded, not verified)</h2>
<pre>${escapeHtml(JSON.stringify(info.assertion, null, 2))}</pre>`;
    return `<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>${escapeHtml(info.app)}</title>
<style>
body { font-family: system-ui, sans-serif; margin: 2rem auto; max-width: 60rem; color: #222; }
table { border-collapse: collapse; width: 100%; }
th, td { text-align: left; vertical-align: top; padding: 0.25rem 0.5rem;
         border-bottom: 1px solid #ddd; font-family: ui-monospace, monospace;
         font-size: 0.85rem; word-break: break-all; }
th { white-space: nowrap; width: 16rem; }
tr.identity { background: #fff3c4; }
.who { font-size: 1.1rem; }
.anonymous { color: #666; }
pre { background: #f4f4f4; padding: 0.8rem; overflow-x: auto; }
</style>
</head>
<body>
<h1>${escapeHtml(info.app)}</h1>
${who}
<p><code>${escapeHtml(info.method)} ${escapeHtml(info.path)}${escapeHtml(info.query)}</code>
from ${escapeHtml(info.remote_address)}</p>
<p><a href="/.pomerium/sign_out">Sign out</a> · <a href="/headers.json">as JSON</a></p>
<h2>Request headers</h2>
<table>
${headerRows(info.headers)}
</table>
${assertion}
</body>
</html>
`;
}

const server = createServer((req, res) => {
    const info = describe(req);
    let body;
    if (wantsJson(req, info.path)) {
        body = JSON.stringify(info, null, 2) + '\n';
        res.setHeader('Content-Type', 'application/json');
    } else {
        body = renderHtml(info);
        res.setHeader('Content-Type', 'text/html; charset=utf-8');
    }
    res.setHeader('Cache-Control', 'no-store');
    res.setHeader('Content-Length', Buffer.byteLength(body));
    res.statusCode = 200;
    res.end(req.method === 'HEAD' ? undefined : body);
    process.stdout.write(`${new Date().toISOString()} sample-app ${req.method} ${info.path} `
        + `${JSON.stringify(info.identity['x-pomerium-claim-email'] || '-')}\n`);
});

server.listen(port, bind, () => {
    process.stdout.write(`${new Date().toISOString()} sample-app listening on ${bind}:${port}\n`);
});

process.on('SIGTERM', () => server.close(() => process.exit(0)));
process.on('SIGINT', () => server.close(() => process.exit(0)));
