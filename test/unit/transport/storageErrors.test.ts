import { toDomainError } from '../../../src/transport/errors';
import { createLogger } from '../../../src/logging/logger';

const logger = createLogger('silent');
const withCode = (code: unknown, message = 'boom') => Object.assign(new Error(message), { code });

/** Seen in the fault test: the driver let an EPIPE through as a plain Error while FerretDB died. */
describe('socket errors that escape the driver unwrapped', () => {
  it.each(['EPIPE', 'ECONNRESET', 'ECONNREFUSED', 'ETIMEDOUT'])('a plain Error with code %s is STORAGE_UNAVAILABLE', (code) => {
    expect(toDomainError(withCode(code, 'This socket has been ended by the other party'), logger).reason).toBe('STORAGE_UNAVAILABLE');
  });

  it('MongoPoolClearedError (the pool was cleared after a network error) is STORAGE_UNAVAILABLE', () => {
    const err = Object.assign(new Error('Connection pool was cleared'), { name: 'MongoPoolClearedError' });
    expect(toDomainError(err, logger).reason).toBe('STORAGE_UNAVAILABLE');
  });

  it('other codes stay INTERNAL (a duplicate key is a bug here, not an outage)', () => {
    expect(toDomainError(withCode(11000, 'E11000 duplicate key'), logger).reason).toBe('INTERNAL');
    expect(toDomainError(withCode('ENOENT'), logger).reason).toBe('INTERNAL');
  });
});
