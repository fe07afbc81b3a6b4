// A real OpenID provider (panva's oidc-provider) on loopback, run as a child process of a test
// (oidc-provider is ESM-only; Jest runs CommonJS). Prints {"issuer": "..."} once listening.
// The test says who signs in next: POST /_test/account {"sub", "claims": {...}}; the login and
// consent prompts then complete for that account without a form (everything else is the real
// provider: discovery, PKCE, state, nonce, signed ID tokens, userinfo).
// argv: client_id client_secret redirect_uri
import { createServer } from 'node:http';
import Provider from 'oidc-provider';

const [clientId, clientSecret, redirectUri] = process.argv.slice(2);
const accounts = new Map();
let next;

const server = createServer();
await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
const issuer = `http://127.0.0.1:${server.address().port}`;

const provider = new Provider(issuer, {
  clients: [
    {
      client_id: clientId,
      client_secret: clientSecret,
      redirect_uris: [redirectUri],
      grant_types: ['authorization_code'],
      response_types: ['code'],
      token_endpoint_auth_method: 'client_secret_post',
    },
  ],
  pkce: { required: () => true },
  scopes: ['openid', 'email', 'profile'],
  claims: { openid: ['sub'], email: ['email', 'email_verified'], profile: ['name', 'groups'] },
  cookies: { keys: ['oidc-provider-test-cookie-key-0123456789'] },
  features: { devInteractions: { enabled: false } },
  interactions: { url: (_ctx, interaction) => `/interaction/${interaction.uid}` },
  findAccount: (_ctx, sub) => {
    const claims = accounts.get(sub);
    return claims ? { accountId: sub, claims: () => ({ sub, ...claims }) } : undefined;
  },
});

const callback = provider.callback();
server.on('request', async (req, res) => {
  try {
    if (req.method === 'POST' && req.url === '/_test/account') {
      let body = '';
      for await (const chunk of req) body += chunk;
      const { sub, claims } = JSON.parse(body);
      accounts.set(sub, claims);
      next = sub;
      res.writeHead(204).end();
      return;
    }
    if (req.method === 'GET' && req.url?.startsWith('/interaction/')) {
      const details = await provider.interactionDetails(req, res);
      if (details.prompt.name === 'login') {
        await provider.interactionFinished(req, res, { login: { accountId: next } }, { mergeWithLastSubmission: false });
        return;
      }
      const grant = details.grantId ? await provider.Grant.find(details.grantId) : new provider.Grant({ accountId: details.session.accountId, clientId: details.params.client_id });
      grant.addOIDCScope(String(details.params.scope));
      await provider.interactionFinished(req, res, { consent: { grantId: await grant.save() } }, { mergeWithLastSubmission: true });
      return;
    }
    callback(req, res);
  } catch (err) {
    res.writeHead(500, { 'content-type': 'text/plain' }).end(String(err));
  }
});
process.stdout.write(`${JSON.stringify({ issuer })}\n`);
process.on('SIGTERM', () => server.close(() => process.exit(0)));
