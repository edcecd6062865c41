/**
 * A small AWS SSM (Parameter Store) on 127.0.0.1 for GetParameter, as strict as the real one
 * where it matters here: the AWS JSON 1.1 protocol (POST /, X-Amz-Target: AmazonSSM.GetParameter,
 * Content-Type application/x-amz-json-1.1), a SigV4 Authorization header for the service "ssm"
 * whose access key it knows (else 400 UnrecognizedClientException), per-key access (else
 * AccessDeniedException), ParameterNotFound, and a SecureString returned encrypted unless
 * WithDecryption is true. It records every call with the caller's access key id.
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';

export interface SsmParameter {
  value: string;
  type?: 'String' | 'SecureString';
  /** Access key ids allowed to read it (default: every known key). */
  readers?: string[];
}

export interface SsmCall {
  target: string | undefined;
  name: string | undefined;
  withDecryption: boolean | undefined;
  accessKeyId: string | undefined;
  service: string | undefined;
  status: number;
}

export interface LocalSsm {
  endpoint: string;
  parameters: Map<string, SsmParameter>;
  /** Access key ids this SSM knows (the server's own identity in tests). */
  knownKeys: Set<string>;
  calls: SsmCall[];
  close(): Promise<void>;
}

export async function startSsm(knownKeys: string[] = []): Promise<LocalSsm> {
  const ssm: LocalSsm = { endpoint: '', parameters: new Map(), knownKeys: new Set(knownKeys), calls: [], close: async () => {} };
  const server = http.createServer((req, res) => {
    let body = '';
    req.on('data', (c: Buffer) => (body += c.toString()));
    req.on('end', () => {
      const auth = req.headers.authorization ?? '';
      const cred = /Credential=([^/]+)\/\d{8}\/[^/]+\/([^/]+)\/aws4_request/.exec(auth);
      const call: SsmCall = { target: req.headers['x-amz-target'] as string | undefined, name: undefined, withDecryption: undefined, accessKeyId: cred?.[1], service: cred?.[2], status: 0 };
      ssm.calls.push(call);
      const answer = (status: number, value: unknown) => {
        call.status = status;
        const text = JSON.stringify(value);
        res.writeHead(status, { 'content-type': 'application/x-amz-json-1.1', 'x-amzn-requestid': 'local', 'content-length': String(Buffer.byteLength(text)) });
        res.end(text);
      };
      const error = (status: number, type: string, message: string) => answer(status, { __type: type, message });
      if (req.method !== 'POST' || !/^application\/x-amz-json-1\.1/.test(req.headers['content-type'] ?? '')) return error(400, 'SerializationException', 'expected AWS JSON 1.1');
      if (!cred || !/AWS4-HMAC-SHA256/.test(auth)) return error(400, 'MissingAuthenticationTokenException', 'Missing Authentication Token');
      if (cred[2] !== 'ssm') return error(400, 'InvalidSignatureException', `Credential should be scoped to correct service: 'ssm'.`);
      if (!ssm.knownKeys.has(cred[1]!)) return error(400, 'UnrecognizedClientException', 'The security token included in the request is invalid.');
      if (call.target !== 'AmazonSSM.GetParameter') return error(400, 'InvalidAction', `not played here: ${call.target}`);
      let input: { Name?: unknown; WithDecryption?: unknown };
      try {
        input = JSON.parse(body) as typeof input;
      } catch {
        return error(400, 'SerializationException', 'body is not JSON');
      }
      call.name = typeof input.Name === 'string' ? input.Name : undefined;
      call.withDecryption = typeof input.WithDecryption === 'boolean' ? input.WithDecryption : undefined;
      if (!call.name) return error(400, 'ValidationException', 'Name is required');
      // A parameter is named by its name or its ARN.
      const fromArn = call.name.replace(/^arn:aws[a-z-]*:ssm:[a-z0-9-]+:\d{12}:parameter/, '');
      const name = ssm.parameters.has(fromArn) || fromArn === call.name ? fromArn : fromArn.replace(/^\//, '');
      const p = ssm.parameters.get(name);
      if (p?.readers && !p.readers.includes(cred[1]!)) {
        return error(400, 'AccessDeniedException', `User: ${cred[1]} is not authorized to perform: ssm:GetParameter on resource: ${name}`);
      }
      if (!p) return error(400, 'ParameterNotFound', '');
      const type = p.type ?? 'SecureString';
      const value = type === 'SecureString' && call.withDecryption !== true ? `AQICAH${Buffer.from(p.value).toString('base64')}` : p.value;
      answer(200, { Parameter: { Name: name, Type: type, Value: value, Version: 1, DataType: 'text', ARN: `arn:aws:ssm:us-east-1:123456789012:parameter${name.startsWith('/') ? '' : '/'}${name}`, LastModifiedDate: 1767225600 } });
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  ssm.endpoint = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  ssm.close = async () => {
    server.closeAllConnections();
    await new Promise((r) => server.close(r));
  };
  return ssm;
}
