import { Writable } from 'node:stream';
import { createLogger } from './logger';
import { newToken, TokenPrefix } from './tokens';

function capture() {
  let out = '';
  const destination = new Writable({
    write(chunk, _e, done) {
      out += chunk.toString();
      done();
    },
  });
  return { log: createLogger({ destination }), text: () => out };
}

describe('logger', () => {
  it('redacts authorization headers, cookies and secret-named fields', () => {
    const { log, text } = capture();
    log.info({ req: { headers: { authorization: 'Bearer abc', cookie: 'steward_session=xyz' } }, body: { password: 'hunter2hunter2' } }, 'x');
    const line = JSON.parse(text());
    expect(line.req.headers).toEqual({ authorization: '[REDACTED]', cookie: '[REDACTED]' });
    expect(line.body.password).toBe('[REDACTED]');
  });

  it('scrubs Steward tokens wherever they appear, messages and errors included', () => {
    const { log, text } = capture();
    const key = newToken(TokenPrefix.ApiKey);
    const session = newToken(TokenPrefix.Session);
    log.warn({ url: `/v1/x/${key}`, err: new Error(`bad key ${key}`) }, `saw ${session}`);
    expect(text()).not.toContain(key);
    expect(text()).not.toContain(session);
    expect(text()).toContain('[REDACTED]');
  });
});
