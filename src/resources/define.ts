/**
 * MCP resources, declared like tools: each names its URI (a fixed one, or a template and the
 * scheme it reads), a toolset (the same MCP_TOOLSETS filter as tools), and a read handler that
 * gets the caller's runtime context. Resources only read, so MCP_READ_ONLY keeps all of them.
 */
import type { RuntimeContext } from '../context.js';
import type { Toolset } from '../config.js';

/** One item of a resources/read answer (text only: binary content is offered as a link). */
export interface TextContent {
  uri: string;
  mimeType: string;
  text: string;
}

export interface ResourceExtras {
  signal: AbortSignal;
}

interface Common {
  /** Programmatic name (resources/templates/list `name`). */
  name: string;
  title: string;
  description: string;
  mimeType?: string;
  toolset: Toolset;
  /**
   * Reads `uri`, exactly as the client sent it (never a parsed-and-reserialized URL: WHATWG URL
   * parsing resolves `..` and `%2e%2e` segments, which would hide them from the key-safety check).
   */
  read(uri: string, ctx: RuntimeContext, extras: ResourceExtras): Promise<TextContent[]>;
}

/** A resource with one fixed URI, listed on the first page of resources/list. */
export interface FixedResource extends Common {
  uri: string;
}

/** A family of resources named by a URI template; `accepts` says which URIs it reads. */
export interface TemplateResource extends Common {
  uriTemplate: string;
  accepts(uri: string): boolean;
}

export type ResourceDefinition = FixedResource | TemplateResource;

export const isFixed = (r: ResourceDefinition): r is FixedResource => 'uri' in r;

/** The resources a configuration offers: the tools' toolset filter (auth always; nothing to drop for read-only). */
export function selectResources(resources: readonly ResourceDefinition[], { toolsets }: { toolsets: string[] | undefined }): ResourceDefinition[] {
  return resources.filter((r) => !toolsets || r.toolset === 'auth' || toolsets.includes(r.toolset));
}
