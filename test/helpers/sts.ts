/**
 * A small STS endpoint (AWS query protocol) on 127.0.0.1: AssumeRole, AssumeRoleWithWebIdentity and
 * GetCallerIdentity. It records every call so tests can assert what was asked, and fails on demand.
 *
 * AssumeRoleWithWebIdentity is played strictly, as AWS does it: the role must trust an identity
 * provider (`trustWebIdentity`: issuer, accepted audiences, and where its keys are); the token's
 * signature is verified against that issuer's JWKS, and its `iss`, `aud` and `exp` are checked.
 * The call is unsigned (AWS needs no caller credentials for it); a signed one is recorded as such.
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { createRemoteJWKSet, jwtVerify, type JWTVerifyGetKey } from 'jose';

export interface WebIdentityTrust {
  /** The IAM OIDC provider's issuer (the token's iss). */
  issuer: string;
  /** Client ids / audiences the provider is registered with (the token's aud must include one). */
  audiences: string[];
  /** The issuer's JWKS. */
  jwksUri: string;
}

export interface WebIdentityCall {
  roleArn: string;
  roleSessionName: string;
  durationSeconds: number | undefined;
  /** Access key of a SigV4 signature on the call, if any (AWS needs none). */
  callerAccessKeyId: string | undefined;
  /** Outcome: 'ok' or the STS error code. */
  outcome: string;
  /** The token's sub, when it verified. */
  subject: string | undefined;
}

export interface AssumeRoleCall {
  roleArn: string;
  roleSessionName: string;
  sourceIdentity: string | undefined;
  externalId: string | undefined;
  durationSeconds: number | undefined;
  tags: Record<string, string>;
  transitiveTagKeys: string[];
  /** Access key that signed the call (whose credentials the server used). */
  callerAccessKeyId: string | undefined;
}

export type StsFailure = 'AccessDenied' | 'ExpiredToken' | 'InternalError' | 'slow';

export interface LocalSts {
  endpoint: string;
  assumeRoleCalls: AssumeRoleCall[];
  identityCalls: Array<{ accessKeyId: string | undefined }>;
  /** The next `times` AssumeRole calls fail this way. */
  failNext(kind: StsFailure, times?: number): void;
  /** Roles whose trust policy refuses the server: every AssumeRole of one answers AccessDenied. */
  refusedRoles: Set<string>;
  /** Access key id handed out for a role (default S3RVER, which s3rver accepts). */
  accessKeyFor: (roleArn: string) => string;
  /** ARN reported by GetCallerIdentity for an access key id. */
  identities: Map<string, string>;
  /** Session token -> role it was issued for (to check which credentials reached S3). */
  issued: Map<string, string>;
  /** Lifetime of issued credentials, seconds (default: DurationSeconds or 3600). */
  lifetimeSeconds: number | undefined;
  webIdentityCalls: WebIdentityCall[];
  /** Makes a role trust an OIDC provider for AssumeRoleWithWebIdentity (the role's trust policy). */
  trustWebIdentity(roleArn: string, trust: WebIdentityTrust): void;
  close(): Promise<void>;
}

const xml = (s: string) => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');

function errorBody(code: string, message: string): string {
  return `<ErrorResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/"><Error><Type>Sender</Type><Code>${code}</Code><Message>${xml(message)}</Message></Error><RequestId>local</RequestId></ErrorResponse>`;
}

export async function startSts(): Promise<LocalSts> {
  const failures: StsFailure[] = [];
  const trusts = new Map<string, { trust: WebIdentityTrust; keys: JWTVerifyGetKey }>();
  let counter = 0;
  const sts: LocalSts = {
    endpoint: '',
    assumeRoleCalls: [],
    identityCalls: [],
    failNext(kind, times = 1) {
      for (let i = 0; i < times; i++) failures.push(kind);
    },
    refusedRoles: new Set(),
    accessKeyFor: () => 'S3RVER',
    identities: new Map([['S3RVER', 'arn:aws:iam::123456789012:user/local-tester']]),
    issued: new Map(),
    lifetimeSeconds: undefined,
    webIdentityCalls: [],
    trustWebIdentity(roleArn, trust) {
      trusts.set(roleArn, { trust, keys: createRemoteJWKSet(new URL(trust.jwksUri)) });
    },
    close: async () => {},
  };

  const credentialsXml = (n: number, roleArn: string, duration: number | undefined) => {
    const lifetime = sts.lifetimeSeconds ?? duration ?? 3600;
    const expiration = new Date(Date.now() + lifetime * 1000).toISOString();
    sts.issued.set(`local-session-token-${n}`, roleArn);
    return `<Credentials><AccessKeyId>${xml(sts.accessKeyFor(roleArn))}</AccessKeyId><SecretAccessKey>S3RVER</SecretAccessKey><SessionToken>local-session-token-${n}</SessionToken><Expiration>${expiration}</Expiration></Credentials>`;
  };

  /** AssumeRoleWithWebIdentity: the role's trusted provider, the token's signature, iss, aud, exp. */
  const webIdentity = async (form: URLSearchParams, callerAccessKeyId: string | undefined): Promise<[number, string]> => {
    const roleArn = form.get('RoleArn') ?? '';
    const duration = form.has('DurationSeconds') ? Number(form.get('DurationSeconds')) : undefined;
    const call: WebIdentityCall = { roleArn, roleSessionName: form.get('RoleSessionName') ?? '', durationSeconds: duration, callerAccessKeyId, outcome: 'ok', subject: undefined };
    sts.webIdentityCalls.push(call);
    const fail = (status: number, code: string, message: string): [number, string] => {
      call.outcome = code;
      return [status, errorBody(code, message)];
    };
    const token = form.get('WebIdentityToken');
    if (!token || !call.roleSessionName) return fail(400, 'ValidationError', 'WebIdentityToken and RoleSessionName are required');
    const entry = trusts.get(roleArn);
    if (!entry) return fail(403, 'AccessDenied', 'Not authorized to perform sts:AssumeRoleWithWebIdentity');
    let payload: Record<string, unknown>;
    try {
      ({ payload } = await jwtVerify(token, entry.keys, { issuer: entry.trust.issuer, algorithms: ['RS256', 'ES256'], requiredClaims: ['exp'] }));
    } catch (err) {
      const code = (err as { code?: string }).code;
      if (code === 'ERR_JWT_EXPIRED') return fail(400, 'ExpiredTokenException', 'Token expired: current date/time must be before the expiration date/time.');
      if (code === 'ERR_JWT_CLAIM_VALIDATION_FAILED') return fail(403, 'AccessDenied', 'Not authorized to perform sts:AssumeRoleWithWebIdentity');
      return fail(400, 'InvalidIdentityToken', "The web identity token's signature could not be verified");
    }
    const aud = Array.isArray(payload.aud) ? payload.aud : [payload.aud];
    if (!aud.some((a) => typeof a === 'string' && entry.trust.audiences.includes(a))) {
      return fail(400, 'InvalidIdentityToken', 'Incorrect token audience');
    }
    call.subject = typeof payload.sub === 'string' ? payload.sub : undefined;
    const failure = failures.shift();
    if (failure === 'AccessDenied') return fail(403, 'AccessDenied', 'Not authorized to perform sts:AssumeRoleWithWebIdentity');
    const n = ++counter;
    const roleName = roleArn.split('/').pop() ?? 'role';
    return [
      200,
      `<AssumeRoleWithWebIdentityResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/"><AssumeRoleWithWebIdentityResult><SubjectFromWebIdentityToken>${xml(call.subject ?? '')}</SubjectFromWebIdentityToken><Audience>${xml(String(aud[0]))}</Audience><AssumedRoleUser><Arn>arn:aws:sts::123456789012:assumed-role/${xml(roleName)}/${xml(call.roleSessionName)}</Arn><AssumedRoleId>AROALOCAL:${n}</AssumedRoleId></AssumedRoleUser>${credentialsXml(n, roleArn, duration)}<Provider>${xml(entry.trust.issuer)}</Provider></AssumeRoleWithWebIdentityResult><ResponseMetadata><RequestId>local-${n}</RequestId></ResponseMetadata></AssumeRoleWithWebIdentityResponse>`,
    ];
  };
  const server = http.createServer((req, res) => {
    let body = '';
    req.on('data', (c: Buffer) => (body += c.toString()));
    req.on('end', async () => {
      const form = new URLSearchParams(body);
      const callerAccessKeyId = /Credential=([^/]+)\//.exec(req.headers.authorization ?? '')?.[1];
      const send = (status: number, text: string) => {
        res.writeHead(status, { 'content-type': 'text/xml' });
        res.end(text);
      };
      const action = form.get('Action');
      if (action === 'GetCallerIdentity') {
        sts.identityCalls.push({ accessKeyId: callerAccessKeyId });
        const arn = (callerAccessKeyId && sts.identities.get(callerAccessKeyId)) ?? `arn:aws:sts::123456789012:assumed-role/unknown/${callerAccessKeyId}`;
        return send(
          200,
          `<GetCallerIdentityResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/"><GetCallerIdentityResult><Arn>${xml(arn)}</Arn><UserId>AIDLOCAL:${xml(callerAccessKeyId ?? '')}</UserId><Account>123456789012</Account></GetCallerIdentityResult><ResponseMetadata><RequestId>local</RequestId></ResponseMetadata></GetCallerIdentityResponse>`,
        );
      }
      if (action === 'AssumeRoleWithWebIdentity') {
        const [status, text] = await webIdentity(form, callerAccessKeyId);
        return send(status, text);
      }
      if (action !== 'AssumeRole') return send(400, errorBody('InvalidAction', `Unsupported action ${action}`));
      const tags: Record<string, string> = {};
      for (let i = 1; form.has(`Tags.member.${i}.Key`); i++) {
        tags[form.get(`Tags.member.${i}.Key`) ?? ''] = form.get(`Tags.member.${i}.Value`) ?? '';
      }
      const transitiveTagKeys: string[] = [];
      for (let i = 1; form.has(`TransitiveTagKeys.member.${i}`); i++) transitiveTagKeys.push(form.get(`TransitiveTagKeys.member.${i}`) ?? '');
      const roleArn = form.get('RoleArn') ?? '';
      const duration = form.has('DurationSeconds') ? Number(form.get('DurationSeconds')) : undefined;
      sts.assumeRoleCalls.push({
        roleArn,
        roleSessionName: form.get('RoleSessionName') ?? '',
        sourceIdentity: form.get('SourceIdentity') ?? undefined,
        externalId: form.get('ExternalId') ?? undefined,
        durationSeconds: duration,
        tags,
        transitiveTagKeys,
        callerAccessKeyId,
      });
      const failure = sts.refusedRoles.has(roleArn) ? 'AccessDenied' : failures.shift();
      if (failure === 'slow') await new Promise((r) => setTimeout(r, 3000));
      else if (failure === 'AccessDenied') {
        return send(403, errorBody('AccessDenied', `User is not authorized to perform: sts:AssumeRole on resource: ${roleArn}`));
      } else if (failure === 'ExpiredToken') {
        return send(400, errorBody('ExpiredToken', 'The security token included in the request is expired'));
      } else if (failure === 'InternalError') {
        res.writeHead(500, { 'content-type': 'text/xml' });
        return res.end(`<ErrorResponse><Error><Type>Receiver</Type><Code>InternalFailure</Code><Message>boom</Message></Error></ErrorResponse>`);
      }
      const n = ++counter;
      const lifetime = sts.lifetimeSeconds ?? duration ?? 3600;
      const expiration = new Date(Date.now() + lifetime * 1000).toISOString();
      const accessKeyId = sts.accessKeyFor(roleArn);
      const roleName = roleArn.split('/').pop() ?? 'role';
      sts.issued.set(`local-session-token-${n}`, roleArn);
      send(
        200,
        `<AssumeRoleResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/"><AssumeRoleResult><SourceIdentity>${xml(form.get('SourceIdentity') ?? '')}</SourceIdentity><AssumedRoleUser><Arn>arn:aws:sts::123456789012:assumed-role/${xml(roleName)}/${xml(form.get('RoleSessionName') ?? '')}</Arn><AssumedRoleId>AROALOCAL:${n}</AssumedRoleId></AssumedRoleUser><Credentials><AccessKeyId>${xml(accessKeyId)}</AccessKeyId><SecretAccessKey>S3RVER</SecretAccessKey><SessionToken>local-session-token-${n}</SessionToken><Expiration>${expiration}</Expiration></Credentials></AssumeRoleResult><ResponseMetadata><RequestId>local-${n}</RequestId></ResponseMetadata></AssumeRoleResponse>`,
      );
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  sts.endpoint = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  sts.close = async () => {
    server.closeAllConnections();
    await new Promise((r) => server.close(r));
  };
  return sts;
}
