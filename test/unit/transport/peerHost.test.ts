import { peerHost } from '../../../src/transport/interceptors/authentication';

describe('peerHost: failed authentications are counted per client host, not per connection', () => {
  it.each([
    ['127.0.0.1:51234', '127.0.0.1'],
    ['::1:51234', '::1'],
    ['::ffff:10.0.0.7:443', '::ffff:10.0.0.7'],
    ['[2001:db8::1]:8080', '2001:db8::1'],
    ['10.0.0.7', '10.0.0.7'],
    ['unknown', 'unknown'],
  ])('%s → %s', (peer, host) => {
    expect(peerHost(peer)).toBe(host);
  });
});
