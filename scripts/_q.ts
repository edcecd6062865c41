import { connectStdio, isolatedEnv } from '../test/helpers/mcp.js';
import { countTokens } from '../test/helpers/tool-budget.js';
const h = await connectStdio(isolatedEnv({ MCP_LOG_LEVEL: 'warning' }));
const { tools } = await h.client.listTools();
let d = 0, a = 0, all = 0, bare = 0;
const walk = (o: any): void => { if (o && typeof o === 'object') for (const [k, v] of Object.entries(o)) { if (k === 'description' && typeof v === 'string') a += countTokens(JSON.stringify(v)); else walk(v); } };
for (const t of tools) { d += countTokens(JSON.stringify(t.description)); walk(t.inputSchema); all += countTokens(JSON.stringify({ name: t.name, description: t.description, input_schema: t.inputSchema })); bare += countTokens(t.name) + countTokens(t.description ?? '') + countTokens(JSON.stringify(t.inputSchema)); }
console.log({ toolDesc: d, argDesc: a, all, bare });
await h.close();
