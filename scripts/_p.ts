import { connectStdio, isolatedEnv } from '../test/helpers/mcp.js';
import { countTokens } from '../test/helpers/tool-budget.js';
const h = await connectStdio(isolatedEnv({ MCP_LOG_LEVEL: 'warning' }));
const { tools } = await h.client.listTools();
for (const name of process.argv.slice(2)) {
  const t = tools.find((x) => x.name === name)!;
  console.log(name, 'desc', countTokens(t.description ?? ''));
  for (const [k, v] of Object.entries(t.inputSchema.properties ?? {})) console.log('  ', k, countTokens(JSON.stringify({ [k]: v })), JSON.stringify(v).slice(0, 300));
}
await h.close();
