/**
 * What a tools/list answer costs a model's context: the model sees each tool's name, description
 * and input schema (clients send those to the model; titles, annotations and output schemas stay
 * with the client). Tokens are counted with OpenAI's o200k_base (js-tiktoken), a stand-in for the
 * tokenizers of the models that read it: none of them publishes its own.
 */
import { Tiktoken } from 'js-tiktoken/lite';
import o200k from 'js-tiktoken/ranks/o200k_base';

export const TOKENIZER = 'o200k_base (js-tiktoken)';

let encoder: Tiktoken | undefined;
export function countTokens(text: string): number {
  encoder ??= new Tiktoken(o200k);
  return encoder.encode(text).length;
}

interface ListedTool {
  name: string;
  description?: string | undefined;
  inputSchema: unknown;
  outputSchema?: unknown;
}

export interface ToolsMeasure {
  tools: number;
  /** The whole `{ tools }` result as JSON. */
  bytes: number;
  outputSchemaBytes: number;
  /** Name, description and input schema of every tool, as JSON. */
  visibleBytes: number;
  tokens: number;
  tokenizer: string;
  perTool: Array<{ name: string; tokens: number }>;
}

export function measureTools(tools: readonly ListedTool[]): ToolsMeasure {
  const visible = tools.map((t) => JSON.stringify({ name: t.name, description: t.description ?? '', input_schema: t.inputSchema }));
  const perTool = tools.map((t, i) => ({ name: t.name, tokens: countTokens(visible[i]!) }));
  return {
    tools: tools.length,
    bytes: Buffer.byteLength(JSON.stringify({ tools })),
    outputSchemaBytes: tools.reduce((n, t) => n + (t.outputSchema ? Buffer.byteLength(JSON.stringify(t.outputSchema)) : 0), 0),
    visibleBytes: visible.reduce((n, v) => n + Buffer.byteLength(v), 0),
    tokens: perTool.reduce((n, t) => n + t.tokens, 0),
    tokenizer: TOKENIZER,
    perTool,
  };
}
