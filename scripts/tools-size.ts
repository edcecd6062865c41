/**
 * `npm run tools:size`: what the default desktop tools/list costs a model's context. Launches the
 * built server over stdio as Claude Desktop does (no settings), lists the tools, and prints the
 * answer's size in bytes and the model-visible part (name, description, input schema) in tokens.
 * Arguments KEY=VALUE set the server's environment (e.g. MCP_TOOLSETS=...,admin).
 */
import { connectStdio, isolatedEnv } from '../test/helpers/mcp.js';
import { measureTools } from '../test/helpers/tool-budget.js';

// Piped into head: a closed stdout ends the report, not with an EPIPE stack.
process.stdout.on('error', () => process.exit(0));
const env = Object.fromEntries(process.argv.slice(2).map((kv) => kv.split('=', 2) as [string, string]));
const h = await connectStdio(isolatedEnv({ MCP_LOG_LEVEL: 'warning', ...env }));
try {
  const { tools } = await h.client.listTools();
  const m = measureTools(tools);
  console.log(`${m.tools} tools; tools/list ${m.bytes.toLocaleString('en-US')} bytes (output schemas ${m.outputSchemaBytes.toLocaleString('en-US')});`);
  console.log(`model-visible (name, description, input schema): ${m.visibleBytes.toLocaleString('en-US')} bytes, ${m.tokens.toLocaleString('en-US')} tokens (${m.tokenizer})`);
  for (const t of m.perTool) console.log(`  ${String(t.tokens).padStart(5)}  ${t.name}`);
} finally {
  await h.close();
}
