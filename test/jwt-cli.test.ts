/**
 * `quilt-mcp jwt generate|inspect` as a user runs them: the built CLI as a child process. Strict
 * options (a typo is an error, never a token with a restriction silently missing), --help on every
 * command, flags that work, and no value of an argument echoed in an error.
 */
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { decodeJwt } from 'jose';
import { describe, expect, it } from 'vitest';
import { GENERATE_HELP, INSPECT_HELP, JWT_HELP } from '../src/cli/jwt-args.js';
import { TEST_SECRET } from './helpers/http.js';
import { isolatedEnv, SERVER_ENTRY } from './helpers/mcp.js';

const exec = promisify(execFile);
const env = isolatedEnv({ MCP_JWT_SECRET: TEST_SECRET });

async function cli(...args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  try {
    const { stdout, stderr } = await exec(process.execPath, [SERVER_ENTRY, 'jwt', ...args], { env });
    return { code: 0, stdout, stderr };
  } catch (err) {
    const e = err as { code: number; stdout: string; stderr: string };
    return { code: e.code, stdout: e.stdout, stderr: e.stderr };
  }
}

describe('jwt generate', () => {
  it('signs the claims it is given, with --enhanced as a flag', async () => {
    const r = await cli('generate', '--sub', 'alice', '--buckets', 'a,b', '--permissions=s3:GetObject', '--enhanced', '--roles', 'Reader', '--tags', 'team=x');
    expect(r.code, r.stderr).toBe(0);
    const claims = decodeJwt(r.stdout.trim());
    expect(claims).toMatchObject({ sub: 'alice', buckets: ['a', 'b'], permissions: ['s3:GetObject'], token_type: 'enhanced', roles: ['Reader'], session_tags: { team: 'x' } });
    expect(r.stderr).toBe('');
  });

  it('refuses a typo instead of signing a token without the restriction', async () => {
    const r = await cli('generate', '--sub', 'alice', '--bucket', 'only-this-one');
    expect(r.code).toBe(2);
    expect(r.stdout).toBe('');
    expect(r.stderr).toContain('Unknown option --bucket for "jwt generate" (did you mean --buckets?)');
  });

  it('refuses a missing value, and an option where a value should be', async () => {
    const end = await cli('generate', '--sub');
    expect(end.code).toBe(2);
    expect(end.stderr).toContain('--sub needs a value');
    const swallowed = await cli('generate', '--sub', '--buckets', 'a');
    expect(swallowed.code).toBe(2);
    expect(swallowed.stderr).toContain('--sub needs a value (the next argument is an option');
    const flag = await cli('generate', '--sub', 'a', '--enhanced=yes');
    expect(flag.code).toBe(2);
    expect(flag.stderr).toContain('--enhanced is a flag and takes no value');
    const noSub = await cli('generate', '--buckets', 'a');
    expect(noSub.code).toBe(2);
    expect(noSub.stderr).toContain('--sub is required');
  });

  it('never echoes the value of a wrong argument', async () => {
    for (const args of [['--secret-key=hunter2hunter2'], ['hunter2hunter2'], ['--sub', 'a', 'hunter2hunter2']]) {
      const r = await cli('generate', ...args);
      expect(r.code, args.join(' ')).toBe(2);
      expect(r.stderr).not.toContain('hunter2');
    }
  });

  it('--help and -h print the usage and exit 0', async () => {
    for (const h of ['--help', '-h']) {
      const r = await cli('generate', h);
      expect(r).toMatchObject({ code: 0, stdout: GENERATE_HELP, stderr: '' });
    }
    // --help wins over anything else on the line, even a missing --sub.
    expect((await cli('generate', '--buckets', 'a', '--help')).code).toBe(0);
  });
});

describe('jwt inspect and jwt itself', () => {
  it('inspect shows normalized claims of a generated token and says it is valid here', async () => {
    const token = (await cli('generate', '--sub', 'bob', '--buckets', 'bob-data')).stdout.trim();
    const r = await cli('inspect', token);
    expect(r.code, r.stderr).toBe(0);
    const out = JSON.parse(r.stdout) as { claims: { sub: string; buckets: string[] }; verification: string };
    expect(out.claims).toMatchObject({ sub: 'bob', buckets: ['bob-data'] });
    expect(out.verification).toBe('valid for this server configuration');
    expect(r.stdout).not.toContain(token.split('.')[2]);
  });

  it('inspect --help, a second token, and unknown commands', async () => {
    expect(await cli('inspect', '--help')).toMatchObject({ code: 0, stdout: INSPECT_HELP });
    const two = await cli('inspect', 'a.b.c', 'd.e.f');
    expect(two.code).toBe(2);
    expect(two.stderr).toContain('takes one token, got 2 arguments');
    expect(await cli('--help')).toMatchObject({ code: 0, stdout: JWT_HELP });
    const none = await cli();
    expect(none.code).toBe(2);
    expect(none.stderr).toContain('A jwt command is needed');
    const unknown = await cli('mint');
    expect(unknown.code).toBe(2);
    expect(unknown.stderr).toContain('Unknown jwt command "mint"');
    expect((await cli('inspect', '--verbose', 'a.b.c')).stderr).toContain('Unknown option --verbose for "jwt inspect"');
  });
});
