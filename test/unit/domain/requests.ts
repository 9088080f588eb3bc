import type { CreateKeyInput, UpdateKeyInput } from '../../../src/domain/validation';

/** A valid CreateKey request as the transport decodes it; override what the test is about. */
export function createInput(over: Partial<CreateKeyInput> = {}): CreateKeyInput {
  return {
    name: 'ci deploy key',
    scopes: ['read'],
    environment: 'live',
    metadata: {},
    workspaceId: '',
    allowSelfRevoke: false,
    recoverable: false,
    requestId: '',
    ...over,
  };
}

/** An UpdateKey request's key fields; only those named by the mask are read. */
export function updateInput(over: Partial<UpdateKeyInput> = {}): UpdateKeyInput {
  return { name: '', scopes: [], metadata: {}, ...over };
}
