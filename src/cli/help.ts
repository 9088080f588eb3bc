import { COMMANDS } from './commands';

export function help(): string {
  const names = Object.keys(COMMANDS);
  const w = Math.max(...names.map((n) => n.length));
  return [
    'keyctl — manage API keys of the apikeys service',
    '',
    'usage: keyctl [global flags] <command> [arguments]',
    '',
    'commands:',
    ...names.map((n) => `  ${n.padEnd(w)}  ${COMMANDS[n].summary}`),
    '',
    'global flags:',
    '  --addr HOST:PORT   service address (env APIKEYS_ADDR; default localhost:50051)',
    '  --token TOKEN      a user JWT, an API key with the needed scopes, or a service token (env APIKEYS_TOKEN)',
    '  --org ORG_ID       staff only: act on this organization (env APIKEYS_ORG; sent as x-organization-id)',
    '  --json             machine-readable output (errors go to stderr as JSON too)',
    '  --timeout 10s      deadline of the whole command (e.g. 30s, 2m)',
    '',
    'exit codes: 0 ok, 2 usage error, 3 refused or failed by the server, 4 service not reachable',
    "'keyctl help <command>' shows a command's flags.",
    '',
  ].join('\n');
}

export function commandHelp(name: string): string {
  return `usage: keyctl [global flags] ${COMMANDS[name].usage}\n\n${COMMANDS[name].summary}\n`;
}
