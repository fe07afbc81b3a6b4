import { ConnectorError } from './errors';

describe('ConnectorError.mayHaveActed: whether a failed call may still have been carried out upstream', () => {
  it.each([
    ['no answer in time', new ConnectorError('timeout', 'x'), true],
    ['HTTP 503 in answer to the call', new ConnectorError('upstream_error', 'x', { status: 503 }), true],
    ['an answer larger than the limit (the upstream answered: it acted)', new ConnectorError('result_too_large', 'x', { bytes: 2_000_000 }), true],
    ['the connection lost during the call', new ConnectorError('upstream_unreachable', 'x', { midCall: true }), true],
    ['HTTP 404: the upstream said it failed', new ConnectorError('upstream_error', 'x', { status: 404 }), false],
    ['connection refused: never sent', new ConnectorError('upstream_unreachable', 'x', { network: 'ECONNREFUSED' }), false],
    ['refused arguments', new ConnectorError('bad_arguments', 'x'), false],
  ])('%s → %s', (_what, err, expected) => {
    expect(err.mayHaveActed).toBe(expected);
  });
});
