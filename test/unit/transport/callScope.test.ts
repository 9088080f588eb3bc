// The KeyService call scope is switched off between calls (it costs every promise of the process
// while on): calls that overlap must keep their own context throughout, and a call that starts
// after the scope was switched off must find it on again.
import { currentCall, inCallScope } from '../../../src/transport/callScope';
import { userContext } from '../domain/contexts';

const turn = () => new Promise((resolve) => setImmediate(resolve));

describe('inCallScope', () => {
  it('keeps each overlapping call’s context across its awaits, also after another call ended', async () => {
    const a = userContext('org_a');
    const b = userContext('org_b');
    let releaseA!: () => void;
    const seen: Array<string | undefined> = [];
    const callA = inCallScope(a, async () => {
      await new Promise<void>((resolve) => (releaseA = resolve));
      await turn();
      seen.push(currentCall()?.orgId);
      return 'a';
    });
    const callB = inCallScope(b, async () => {
      await turn();
      seen.push(currentCall()?.orgId);
      return 'b';
    });
    await expect(callB).resolves.toBe('b');
    await turn(); // B has left the scope; A is still in it
    releaseA();
    await expect(callA).resolves.toBe('a');
    expect(seen).toEqual(['org_b', 'org_a']);
    expect(currentCall()).toBeUndefined();
  });

  it('has no current call once the last one ended, and a new call is in scope again', async () => {
    await inCallScope(userContext('org_a'), async () => turn());
    await turn();
    expect(currentCall()).toBeUndefined();
    const c = userContext('org_c');
    await expect(
      inCallScope(c, async () => {
        await turn();
        return currentCall();
      }),
    ).resolves.toBe(c);
  });

  it('leaves the scope when the work fails, at once or later', async () => {
    await expect(inCallScope(userContext('org_a'), () => Promise.reject(new Error('later')))).rejects.toThrow('later');
    expect(() =>
      inCallScope(userContext('org_a'), () => {
        throw new Error('at once');
      }),
    ).toThrow('at once');
    await turn();
    expect(currentCall()).toBeUndefined();
    const c = userContext('org_c');
    await expect(inCallScope(c, async () => currentCall())).resolves.toBe(c);
  });
});
