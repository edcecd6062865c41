/**
 * `defineTool`: every tool declares its name, schemas, kind and toolset the same way; the server
 * derives MCP annotations from `kind` and wraps the handler (context, errors, text rendering).
 */
import type { ToolAnnotations } from '@modelcontextprotocol/sdk/types.js';
import type { z } from 'zod';
import type { RuntimeContext } from '../context.js';

export type ToolKind = 'read' | 'write' | 'destructive';
/**
 * `admin` tools (catalog administration) are offered only when MCP_TOOLSETS names `admin`;
 * `diagnostics` (operators' token and cache checks) in JWT mode, or when MCP_TOOLSETS names it.
 */
export type Toolset = 'auth' | 'buckets' | 'packages' | 'search' | 'catalog' | 'athena' | 'diagnostics' | 'admin';

export interface ToolExtras {
  /** Aborted when the client cancels the request. */
  signal: AbortSignal;
  /** MCP progress notification; a no-op when the client sent no progress token. */
  progress(progress: number, total?: number, message?: string): Promise<void>;
}

/** Extra content blocks a tool may return besides its text (e.g. an image). */
export type ExtraContent = { type: 'image'; data: string; mimeType: string };

export interface ToolOutput<O> {
  data: O;
  /**
   * The text for the model and the person; defaults to compact JSON of `data`. It carries every
   * value a next call needs (URIs, hashes, cursors) and every note of `data`.
   */
  text?: string;
  extraContent?: ExtraContent[];
}

export interface ToolDefinition<I extends z.ZodRawShape, O extends z.ZodRawShape = {}> {
  name: string;
  title: string;
  description: string;
  toolset: Toolset;
  kind: ToolKind;
  /** Same call twice has no additional effect (defaults: read true, others false). */
  idempotent?: boolean;
  /**
   * false: a former name that still answers calls but is not in tools/list, so the model's list
   * holds each capability once (the tool that replaced it says the same and more).
   */
  listed?: false;
  /** Talks to services outside this process (default true). */
  openWorld?: boolean;
  /** Only about local files (desktop mode): JWT mode does not offer it, and says why when called. */
  desktopOnly?: true;
  input: I;
  /**
   * The structured result's schema. A tool whose answer is bulk content (an object's bytes) has
   * none: its text is the whole answer, so the content reaches every client once.
   */
  output?: O;
  handler(
    args: z.infer<z.ZodObject<I>>,
    ctx: RuntimeContext,
    extras: ToolExtras,
  ): Promise<ToolOutput<z.infer<z.ZodObject<O>>>>;
}

export function defineTool<I extends z.ZodRawShape, O extends z.ZodRawShape = {}>(
  def: ToolDefinition<I, O>,
): ToolDefinition<I, O> {
  return def;
}

// Tool lists hold definitions of many shapes; the server only needs the common surface.
// eslint-disable-next-line @typescript-eslint/no-explicit-any
export type AnyTool = ToolDefinition<any, any>;

export function annotationsFor(tool: AnyTool): ToolAnnotations {
  return {
    title: tool.title,
    readOnlyHint: tool.kind === 'read',
    destructiveHint: tool.kind === 'destructive',
    idempotentHint: tool.idempotent ?? tool.kind === 'read',
    openWorldHint: tool.openWorld ?? true,
  };
}
