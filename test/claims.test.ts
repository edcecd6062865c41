/** Claim normalization: the three token shapes into one principal, malformed claims named. */
import { describe, expect, it } from 'vitest';
import { allowsAction, allowsBucket, expandBuckets, isBasicToken, normalizeClaims } from '../src/auth/claims.js';
import { cacheKey, stsSafe } from '../src/auth/sts.js';

const exp = Math.floor(Date.now() / 1000) + 600;

describe('seed-era MCP token', () => {
  it('accepts aliases for sub, role and tags', () => {
    const c = normalizeClaims({
      user_id: 'alice',
      roleArn: 'arn:aws:iam::123456789012:role/QuiltUser',
      sessionTags: { team: 'genomics', level: 3 },
      catalog_token: 'ct',
      catalog_url: 'https://quilt.example.com/',
      buckets: ['a-bucket', 'b-bucket'],
      permissions: ['s3:GetObject'],
      exp,
    });
    expect(c).toMatchObject({
      sub: 'alice',
      shape: 'mcp',
      roleArn: 'arn:aws:iam::123456789012:role/QuiltUser',
      sessionTags: { team: 'genomics', level: '3' },
      catalogToken: 'ct',
      catalogUrl: 'https://quilt.example.com',
      buckets: ['a-bucket', 'b-bucket'],
      permissions: ['s3:GetObject'],
    });
    expect(allowsBucket(c, 'a-bucket')).toBe(true);
    expect(allowsBucket(c, 'c-bucket')).toBe(false);
    expect(allowsAction(c, 'read')).toBe(true);
    expect(allowsAction(c, 'write')).toBe(false);
  });

  it('accepts session tags as a list of {Key, Value}', () => {
    const c = normalizeClaims({ sub: 'a', tags: [{ Key: 'team', Value: 'x' }], exp });
    expect(c.sessionTags).toEqual({ team: 'x' });
  });
});

describe('enhanced frontend token', () => {
  it('normalizes roles, permissions, buckets, scope and level', () => {
    const c = normalizeClaims({
      sub: 'bob',
      token_type: 'enhanced',
      roles: ['ReadQuiltBucket'],
      permissions: ['s3:GetObject', 's3:ListBucket'],
      buckets: ['quilt-sandbox'],
      scope: 'read',
      level: 'read',
      iss: 'quilt-frontend',
      aud: 'quilt-mcp-server',
      exp,
    });
    expect(c).toMatchObject({ shape: 'enhanced', roles: ['ReadQuiltBucket'], scope: 'read', level: 'read', audience: ['quilt-mcp-server'] });
    expect(isBasicToken(c)).toBe(false);
  });
});

describe('compressed token', () => {
  it('expands abbreviated permissions and bucket groups', () => {
    const c = normalizeClaims({
      sub: 'carol',
      p: ['g', 'l', 'p', 'la', 'gv'],
      r: ['Writer'],
      s: 'w',
      l: 'write',
      b: { _type: 'groups', _data: { quilt: ['sandbox', 'demo', 'other-full-name'] } },
      exp,
    });
    expect(c.shape).toBe('compressed');
    expect(c.permissions).toEqual(['s3:GetObject', 's3:ListBucket', 's3:PutObject', 's3:ListAllMyBuckets', 's3:GetObjectVersion']);
    expect(c.buckets).toEqual(['quilt-sandbox', 'quilt-demo', 'other-full-name']);
    expect(c.roles).toEqual(['Writer']);
    expect(c.scope).toBe('w');
  });

  it('expands patterns and base64 lists', () => {
    expect(expandBuckets('b', { _type: 'patterns', _data: { quilt: ['x', 'y'], other: ['plain-bucket'] } })).toEqual([
      'quilt-x',
      'quilt-y',
      'plain-bucket',
    ]);
    const data = Buffer.from(JSON.stringify(['one-bucket', 'two-bucket'])).toString('base64');
    expect(expandBuckets('b', { _type: 'compressed', _data: data })).toEqual(['one-bucket', 'two-bucket']);
  });

  it('lets explicit full fields win over short ones', () => {
    const c = normalizeClaims({ sub: 'd', p: ['g'], permissions: ['s3:PutObject'], b: ['short-bucket'], buckets: ['full-bucket'], exp });
    expect(c.permissions).toEqual(['s3:PutObject']);
    expect(c.buckets).toEqual(['full-bucket']);
  });
});

describe('malformed claims are rejected by name', () => {
  const cases: Array<[string, Record<string, unknown>, RegExp]> = [
    ['missing sub', { exp }, /Claim "sub" is missing/],
    ['bad role ARN', { sub: 'a', role_arn: 'not-an-arn', exp }, /Claim "role_arn" is not an IAM role ARN/],
    ['buckets not a list', { sub: 'a', buckets: 5, exp }, /Claim "buckets"/],
    ['unknown _type', { sub: 'a', b: { _type: 'zip', _data: 'x' }, exp }, /Claim "b" has unknown _type "zip"/],
    ['bad base64 list', { sub: 'a', b: { _type: 'compressed', _data: '!!!' }, exp }, /Claim "b" has _type "compressed" but _data/],
    ['unknown abbreviation', { sub: 'a', p: ['zz'], exp }, /Claim "p" contains unknown permission "zz"/],
    ['bad bucket name', { sub: 'a', buckets: ['Bad Bucket!'], exp }, /Claim "buckets" contains "Bad Bucket!"/],
    ['tag value object', { sub: 'a', session_tags: { t: { x: 1 } }, exp }, /Claim "session_tags" tag "t" must have a string value/],
    ['catalog_url not a URL', { sub: 'a', catalog_url: 'ftp://x', exp }, /Claim "catalog_url" must be an http\(s\) URL/],
    ['missing exp', { sub: 'a' }, /Claim "exp" is missing/],
  ];
  for (const [name, raw, message] of cases) {
    it(name, () => {
      expect(() => normalizeClaims(raw)).toThrow(message);
    });
  }
});

describe('basic tokens and STS names', () => {
  it('recognizes a basic catalog token', () => {
    expect(isBasicToken(normalizeClaims({ sub: 'a', catalog_token: 'x', exp }))).toBe(true);
    expect(isBasicToken(normalizeClaims({ sub: 'a', role_arn: 'arn:aws:iam::123456789012:role/r', exp }))).toBe(false);
  });

  it('makes STS-safe names and order-independent cache keys', () => {
    expect(stsSafe('auth0|user 1', 64)).toBe('auth0_user_1');
    expect(cacheKey({ roleArn: 'r', sub: 's', tags: { b: '2', a: '1' } })).toBe(cacheKey({ roleArn: 'r', sub: 's', tags: { a: '1', b: '2' } }));
  });
});
