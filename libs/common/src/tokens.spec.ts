import { metricsAccess } from './tokens';

describe('metricsAccess (who may read /metrics)', () => {
  const token = 'm'.repeat(40);
  it('needs the configured token as a Bearer token', () => {
    expect(metricsAccess({ METRICS_TOKEN: token, NODE_ENV: 'production' }, `Bearer ${token}`)).toBe('ok');
    expect(metricsAccess({ METRICS_TOKEN: token, NODE_ENV: 'production' }, `bearer ${token}`)).toBe('ok');
    expect(metricsAccess({ METRICS_TOKEN: token, NODE_ENV: 'development' }, undefined)).toBe('unauthorized');
    expect(metricsAccess({ METRICS_TOKEN: token, NODE_ENV: 'production' }, `Bearer ${token.slice(1)}`)).toBe('unauthorized');
    expect(metricsAccess({ METRICS_TOKEN: token, NODE_ENV: 'production' }, token)).toBe('unauthorized');
  });
  it('without a token: open outside production, off in production', () => {
    expect(metricsAccess({ NODE_ENV: 'development' }, undefined)).toBe('ok');
    expect(metricsAccess({ NODE_ENV: 'test' }, 'Bearer whatever')).toBe('ok');
    expect(metricsAccess({ NODE_ENV: 'production' }, undefined)).toBe('off');
    expect(metricsAccess({ NODE_ENV: 'production' }, `Bearer ${token}`)).toBe('off');
  });
});
