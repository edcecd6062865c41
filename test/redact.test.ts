/** Redaction: nothing secret reaches a log line, a tool error or a configuration error. */
import { describe, expect, it } from 'vitest';
import { ConfigError, isSecretName, loadConfig } from '../src/config.js';
import { redact, registerSecret } from '../src/redact.js';

const SECRET_KEY = 'wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY';
const SESSION_TOKEN =
  'IQoJb3JpZ2luX2VjEJr//////////wEaCXVzLWVhc3QtMSJHMEUCIQDexample+sessionTokenValue/abc123XYZ==';
const JWT =
  'eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiJhbGljZSIsImV4cCI6MTcwMDAwMDAwMH0.c2lnbmF0dXJlLXNpZ25hdHVyZQ';
const SHA1 = 'da39a3ee5e6b4b0d3255bfef95601890afd80709';
const TOP_HASH = 'a3f1c9d2e4b5a6978877665544332211ffeeddccbbaa00998877665544332211';
const LINUX = { platform: 'linux' as const, homedir: '/tmp/x' };

describe('XML bodies (STS, S3)', () => {
  it('redacts the credentials of an AssumeRole response and keeps the rest', () => {
    const body = `<AssumeRoleResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/">
  <AssumeRoleResult>
    <Credentials>
      <AccessKeyId>ASIAIOSFODNN7EXAMPLE</AccessKeyId>
      <SecretAccessKey>${SECRET_KEY}</SecretAccessKey>
      <SessionToken>${SESSION_TOKEN}</SessionToken>
      <Expiration>2030-01-01T12:00:00Z</Expiration>
    </Credentials>
    <AssumedRoleUser><Arn>arn:aws:sts::123456789012:assumed-role/QuiltUser/alice</Arn></AssumedRoleUser>
  </AssumeRoleResult>
</AssumeRoleResponse>`;
    const out = redact(body);
    expect(out).not.toContain('ASIAIOSFODNN7EXAMPLE');
    expect(out).not.toContain('wJalr');
    expect(out).not.toContain('IQoJb3JpZ2lu');
    expect(out).toContain('<AccessKeyId>[redacted]</AccessKeyId>');
    expect(out).toContain('<SecretAccessKey>[redacted]</SecretAccessKey>');
    expect(out).toContain('<SessionToken>[redacted]</SessionToken>');
    expect(out).toContain('<Expiration>2030-01-01T12:00:00Z</Expiration>');
    expect(out).toContain('<Arn>arn:aws:sts::123456789012:assumed-role/QuiltUser/alice</Arn>');
    expect(out).toContain('<AssumeRoleResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/">');
  });

  it('matches tag names case-insensitively, with attributes, and without a closing tag', () => {
    expect(redact('<sessiontoken>abc.def</sessiontoken>')).toBe('<sessiontoken>[redacted]</sessiontoken>');
    expect(redact('<Token>t0k3n</Token><RefreshToken>r</RefreshToken><Password>hunter2</Password>')).toBe(
      '<Token>[redacted]</Token><RefreshToken>[redacted]</RefreshToken><Password>[redacted]</Password>',
    );
    expect(redact('<SecretAccessKey type="x">abc</SecretAccessKey>')).toBe(
      '<SecretAccessKey type="x">[redacted]</SecretAccessKey>',
    );
    // A body cut short (error texts are truncated) still loses its value.
    expect(redact('<Credentials><SessionToken>IQoJb3JpZ2luX2Vj')).toBe('<Credentials><SessionToken>[redacted]');
  });

  it('keeps placeholders in prose: "Bearer <token>." is an instruction, not an XML credential', () => {
    expect(redact('This server requires a JWT: send Authorization: Bearer <token>.')).toBe(
      'This server requires a JWT: send Authorization: Bearer <token>.',
    );
    expect(redact('Use <Token> then <SessionToken> (see the docs).')).toBe('Use <Token> then <SessionToken> (see the docs).');
    // A value right after the tag still goes, whatever its case.
    expect(redact('<token>abc</token> <Token>-x</Token>')).toBe('<token>[redacted]</token> <Token>[redacted]</Token>');
  });

  it('redacts the key id and signature of an S3 SignatureDoesNotMatch error', () => {
    const out = redact(
      '<Error><Code>SignatureDoesNotMatch</Code><AWSAccessKeyId>minio-user</AWSAccessKeyId><SignatureProvided>fe5f80f77d5fa3beca038a248ff027d0445342fe2855ddc963176630326f1024</SignatureProvided></Error>',
    );
    expect(out).toBe(
      '<Error><Code>SignatureDoesNotMatch</Code><AWSAccessKeyId>[redacted]</AWSAccessKeyId><SignatureProvided>[redacted]</SignatureProvided></Error>',
    );
  });
});

describe('bare AWS secret access keys', () => {
  it('redacts a 40-character secret key in a sentence', () => {
    const out = redact(`The key ${SECRET_KEY} was rejected; try again.`);
    expect(out).toBe('The key [redacted-secret-key] was rejected; try again.');
  });

  it('redacts a key after = or in quotes, and one with + but no digit or /', () => {
    expect(redact(`aws configure set x=${SECRET_KEY}`)).not.toContain('wJalr');
    const plus = 'abcdefghijABCDEFGHIJabcdefghij+BCDEFGHIJ';
    expect(plus).toHaveLength(40);
    expect(redact(`('${plus}')`)).toBe("('[redacted-secret-key]')");
  });

  it('keeps a SHA-1 digest, an upper-case hex digest and a 64-character top hash', () => {
    expect(redact(`commit ${SHA1} is HEAD`)).toBe(`commit ${SHA1} is HEAD`);
    expect(redact(SHA1.toUpperCase())).toBe(SHA1.toUpperCase());
    expect(redact(`package alice/data@${TOP_HASH}`)).toBe(`package alice/data@${TOP_HASH}`);
    expect(redact(`top_hash: ${TOP_HASH}`)).toBe(`top_hash: ${TOP_HASH}`);
  });

  it('keeps 40-character runs that are not exactly 40 or lack a mix of character kinds', () => {
    const word = 'Pneumonoultramicroscopicsilicovolcanoconiosis'.slice(0, 40); // letters only
    expect(redact(word)).toBe(word);
    const longer = `${SECRET_KEY}A`; // 41 characters: part of a longer run
    expect(redact(longer)).toBe(longer);
    const lowerDigits = 'abcdefghij0123456789abcdefghij0123456789'; // no upper case
    expect(redact(lowerDigits)).toBe(lowerDigits);
  });
});

describe('token fields', () => {
  it('redacts Python-repr dicts with single quotes', () => {
    expect(redact("{'refresh_token': 'abc', 'access_token': \"def ghi\", 'expires_in': 3600}")).toBe(
      "{'refresh_token': '[redacted]', 'access_token': \"[redacted]\", 'expires_in': 3600}",
    );
    expect(redact("{'SecretAccessKey': 'x', 'Expiration': datetime.datetime(2030, 1, 1)}")).toBe(
      "{'SecretAccessKey': '[redacted]', 'Expiration': datetime.datetime(2030, 1, 1)}",
    );
    expect(redact("Credentials(refresh_token='abc', user='alice')")).toBe(
      "Credentials(refresh_token='[redacted]', user='alice')",
    );
  });

  it('redacts a quoted value up to its matching quote, whatever it contains', () => {
    expect(redact('{"password": "a b,c}&d", "user": "alice"}')).toBe('{"password": "[redacted]", "user": "alice"}');
    expect(redact('{"token": "ab\\"cd", "user": "alice"}')).toBe('{"token": "[redacted]", "user": "alice"}');
    expect(redact("{'token': 'it\\'s', 'user': 'alice'}")).toBe("{'token': '[redacted]', 'user': 'alice'}");
    // Unterminated (truncated text): redacted to the end.
    expect(redact('{"refresh_token": "abc def')).toBe('{"refresh_token": "[redacted]');
  });

  it('keeps the behaviour for JSON, form and env fields', () => {
    expect(redact('{"access_token":"abc","token_type":"Bearer"}')).toBe(
      '{"access_token":"[redacted]","token_type":"Bearer"}',
    );
    expect(redact('grant_type=refresh_token&refresh_token=abc&client_id=x')).toBe(
      'grant_type=refresh_token&refresh_token=[redacted]&client_id=x',
    );
    expect(redact('AWS_SESSION_TOKEN=abc AWS_REGION=us-east-1')).toBe('AWS_SESSION_TOKEN=[redacted] AWS_REGION=us-east-1');
    expect(redact('aws_secret_access_key = abcdef')).toBe('aws_secret_access_key = [redacted]');
    expect(redact('MCP_JWT_SECRET=abcdef')).toBe('MCP_JWT_SECRET=[redacted]');
    expect(redact('{"api_key": "k", "clientSecret": "s"}')).toBe('{"api_key": "[redacted]", "clientSecret": "[redacted]"}');
  });

  it('redacts credentials as util.inspect and quilt3 print them', () => {
    const inspected = `{\n  accessKeyId: 'minioadmin',\n  secretAccessKey: '${SECRET_KEY}',\n  sessionToken: 'IQoJb3JpZ2luX2Vj',\n  expiration: 2030-01-01T12:00:00.000Z\n}`;
    expect(redact(inspected)).toBe(
      "{\n  accessKeyId: '[redacted]',\n  secretAccessKey: '[redacted]',\n  sessionToken: '[redacted]',\n  expiration: 2030-01-01T12:00:00.000Z\n}",
    );
    expect(redact('{"access_key": "ASIAX", "secret_key": "s", "token": "t", "expiry_time": "2030-01-01T00:00:00Z"}')).toBe(
      '{"access_key": "[redacted]", "secret_key": "[redacted]", "token": "[redacted]", "expiry_time": "2030-01-01T00:00:00Z"}',
    );
  });

  it('redacts the x-amz-security-token header form', () => {
    expect(redact('x-amz-security-token: IQoJb3JpZ2luX2Vj\nhost: s3.amazonaws.com')).toBe(
      'x-amz-security-token: [redacted]\nhost: s3.amazonaws.com',
    );
    expect(redact("{ 'x-amz-security-token': 'IQoJb3JpZ2luX2Vj', host: 's3' }")).toBe(
      "{ 'x-amz-security-token': '[redacted]', host: 's3' }",
    );
  });
});

describe('AWS request signing', () => {
  it('redacts the key id and signature of a SigV4 Authorization header', () => {
    const out = redact(
      'Authorization: AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20130524/us-east-1/s3/aws4_request, SignedHeaders=host;range;x-amz-date, Signature=fe5f80f77d5fa3beca038a248ff027d0445342fe2855ddc963176630326f1024',
    );
    expect(out).toBe(
      'Authorization: AWS4-HMAC-SHA256 Credential=[redacted]/20130524/us-east-1/s3/aws4_request, SignedHeaders=host;range;x-amz-date, Signature=[redacted]',
    );
    expect(redact('Credential=minioadmin/20240101/us-east-1/s3/aws4_request')).toBe(
      'Credential=[redacted]/20240101/us-east-1/s3/aws4_request',
    );
  });

  it('redacts presigned URL parameters (existing behaviour)', () => {
    const url =
      'https://b.s3.amazonaws.com/k.csv?X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=ASIAIOSFODNN7EXAMPLE%2F20240101%2Fus-east-1%2Fs3%2Faws4_request&X-Amz-Date=20240101T000000Z&X-Amz-Expires=900&X-Amz-Security-Token=IQoJb3JpZ2luX2Vj&X-Amz-Signature=abcdef0123&X-Amz-SignedHeaders=host';
    expect(redact(url)).toBe(
      'https://b.s3.amazonaws.com/k.csv?X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=[redacted]&X-Amz-Date=20240101T000000Z&X-Amz-Expires=900&X-Amz-Security-Token=[redacted]&X-Amz-Signature=[redacted]&X-Amz-SignedHeaders=host',
    );
    expect(redact('https://b.s3.amazonaws.com/k?AWSAccessKeyId=AKIAX&Signature=sig&Expires=1')).toBe(
      'https://b.s3.amazonaws.com/k?AWSAccessKeyId=[redacted]&Signature=[redacted]&Expires=1',
    );
  });

  it('redacts access key ids (existing behaviour)', () => {
    expect(redact('key AKIAIOSFODNN7EXAMPLE denied')).toBe('key [redacted-key-id] denied');
  });
});

describe('JWTs and bearer tokens (existing behaviour)', () => {
  it('redacts a JWT anywhere in text', () => {
    expect(redact(`token ${JWT} expired`)).toBe('token [redacted-jwt] expired');
    expect(redact(`(${JWT})`)).toBe('([redacted-jwt])');
    expect(redact(`x-${JWT}`)).toBe('x-[redacted-jwt]');
    expect(redact('eyJhbGciOiJub25lIn0.eyJzdWIiOiJhIn0.')).toBe('[redacted-jwt]');
    // Not at a word boundary, or not three parts: left alone, as before.
    expect(redact('xeyJabcd.e.f')).toBe('xeyJabcd.e.f');
    expect(redact('eyJabcd.efgh')).toBe('eyJabcd.efgh');
    expect(redact('xeyJ-eyJabcd.e.f')).toBe('xeyJ-[redacted-jwt]');
  });

  it('redacts bearer tokens and long opaque runs', () => {
    expect(redact('Authorization: Bearer abc.def-ghi')).toBe('Authorization: Bearer [redacted]');
    expect(redact(`session ${'A1b2'.repeat(40)} end`)).toBe('session [redacted] end');
  });
});

describe('other credentials', () => {
  it('redacts passwords in URLs and PEM private keys', () => {
    expect(redact('postgres://quilt:hunter2@db.example.com:5432/q')).toBe('postgres://quilt:[redacted]@db.example.com:5432/q');
    expect(redact('https://example.com:8443/a@b')).toBe('https://example.com:8443/a@b');
    const pem = '-----BEGIN RSA PRIVATE KEY-----\nMIIEow\nIBAAKC\n-----END RSA PRIVATE KEY-----';
    expect(redact(pem)).toBe('-----BEGIN RSA PRIVATE KEY-----[redacted]-----END RSA PRIVATE KEY-----');
  });

  it('redacts registered secrets of 8 or more characters only', () => {
    registerSecret('abc');
    registerSecret('s3cr3t-value-for-tests');
    expect(redact('abc and s3cr3t-value-for-tests')).toBe('abc and [redacted]');
  });
});

describe('configuration errors', () => {
  it('never prints the value of a secret variable, however short', () => {
    let error: unknown;
    try {
      loadConfig(['serve'], { MCP_REQUIRE_JWT: 'true', MCP_JWT_SECRET: 'abc' }, LINUX);
    } catch (err) {
      error = err;
    }
    expect(error).toBeInstanceOf(ConfigError);
    const message = (error as Error).message;
    expect(message).not.toContain('abc');
    expect(message).toBe(
      'MCP_JWT_SECRET is invalid: must be at least 32 characters (got 3 characters; the value is not shown).',
    );
  });

  it('still shows the value of an ordinary variable', () => {
    expect(() => loadConfig(['serve'], { MCP_TRANSPORT: 'carrier-pigeon' }, LINUX)).toThrow(/got "carrier-pigeon"/);
  });

  it('redacts credentials inside an ordinary value and in unknown arguments', () => {
    expect(() => loadConfig(['serve'], { QUILT_CATALOG_URL: 'ftp://u:hunter2@x' }, LINUX)).toThrow(ConfigError);
    try {
      loadConfig(['serve'], { QUILT_CATALOG_URL: 'ftp://u:hunter2@x' }, LINUX);
    } catch (err) {
      expect((err as Error).message).not.toContain('hunter2');
    }
    for (const argv of [['--jwt-secret=hunter22'], ['jwt', 'generate', '--Secret=hunter22'], [JWT]]) {
      try {
        loadConfig(argv, {}, LINUX);
        expect.unreachable();
      } catch (err) {
        expect(err).toBeInstanceOf(ConfigError);
        expect((err as Error).message).not.toContain('hunter22');
        expect((err as Error).message).not.toContain('eyJhbGci');
      }
    }
  });

  it('knows which variables are secret', () => {
    for (const name of ['MCP_JWT_SECRET', 'MCP_JWT_TOKEN', 'AWS_SECRET_ACCESS_KEY', 'AWS_ACCESS_KEY_ID', 'DB_PASSWORD', 'API_KEY']) {
      expect(isSecretName(name)).toBe(true);
    }
    for (const name of ['MCP_JWT_JWKS_URL', 'MCP_JWT_KID', 'PORT', 'MCP_JWT_MAX_BYTES', 'AWS_REGION']) {
      expect(isSecretName(name)).toBe(false);
    }
  });
});

describe('linear time', () => {
  const adversarial: Record<string, string> = {
    'a run of letters': 'a'.repeat(1e6),
    'an unterminated quoted token': `"token": "${'x'.repeat(1e6)}`,
    'an unterminated escaped token': `"token": "${'\\"'.repeat(5e5)}`,
    'repeated XML open tags': '<SessionToken>'.repeat(50000),
    'repeated XML tags with attributes': '<Token a=1 '.repeat(90000),
    'JWT-like prefixes': 'eyJ-'.repeat(250000),
    'JWT-like first parts': 'eyJabcd.'.repeat(125000),
    'mixed-case base64': 'aB1/'.repeat(250000),
    'runs of 119 characters': `${'a'.repeat(119)} `.repeat(8000),
    'runs of 39 characters': `${'aB1'.repeat(13)} `.repeat(25000),
    'field names and separators': 'token:'.repeat(160000),
    'field names and quotes': "token='".repeat(140000),
    'quoted field names': '"token":"'.repeat(100000),
    'runs of 40 characters': `${'aB1/'.repeat(10)} `.repeat(24000),
    'field names and spaces': `token${' '.repeat(1e6)}`,
    'field names, separator, spaces': `token:${' '.repeat(1e6)}`,
    'URL schemes': '://a:'.repeat(200000),
    'bearer and spaces': 'Bearer      '.repeat(80000),
    'PEM headers': '-----BEGIN PRIVATE KEY-----'.repeat(35000),
  };
  for (const [name, text] of Object.entries(adversarial)) {
    // Linear: tens of milliseconds; a quadratic pass over a megabyte takes minutes. The limit leaves
    // 10x headroom for two busy cores (500 ms was missed under load).
    it(`redacts ${name} (${(text.length / 1e6).toFixed(1)} MB) in linear time`, () => {
      const start = performance.now();
      redact(text);
      expect(performance.now() - start).toBeLessThan(3_000);
    });
  }
});
