/** `auth://status`: what the auth_status tool answers, for clients that show resources. */
import { authReport } from '../auth/status.js';
import type { FixedResource } from './define.js';

export const authStatusResource: FixedResource = {
  name: 'auth-status',
  uri: 'auth://status',
  title: 'Authentication status',
  description: 'Who the server acts as: AWS identity and credential source, the Quilt catalog and how it is authenticated (the auth_status tool\'s answer). No secrets.',
  mimeType: 'application/json',
  toolset: 'auth',
  async read(uri, ctx) {
    const out = await authReport(ctx);
    return [{ uri, mimeType: 'application/json', text: JSON.stringify(out.data, null, 2) }];
  },
};
