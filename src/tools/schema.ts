/**
 * Tool argument schemas as the model sees and the server checks them. Arguments are strict: an
 * unknown name is refused with the names the tool takes and the nearest one, never dropped (a
 * model that guesses `entries` for `add` must hear of it before anything is committed). The JSON
 * Schema sent in tools/list is built here too, once per tool, in the portable subset every client
 * takes: no `$schema` line per tool, no type arrays (nullable values are `anyOf` branches), no
 * schema that constrains nothing, and `additionalProperties: false` on every argument object.
 */
import { z } from 'zod';
import type { AnyTool } from './define.js';

/** Edit distance (Levenshtein), for "did you mean". Names are short, so the table is small. */
function distance(a: string, b: string): number {
  let prev = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const row = [i];
    for (let j = 1; j <= b.length; j++) {
      row[j] = Math.min(prev[j]! + 1, row[j - 1]! + 1, prev[j - 1]! + (a[i - 1] === b[j - 1] ? 0 : 1));
    }
    prev = row;
  }
  return prev[b.length]!;
}

const squash = (s: string) => s.toLowerCase().replace(/[^a-z0-9]/g, '');

/** The accepted name closest to `given`, when one is close enough to be what was meant. */
export function nearestName(given: string, accepted: readonly string[]): string | undefined {
  const g = squash(given);
  let best: { name: string; d: number } | undefined;
  for (const name of accepted) {
    const n = squash(name);
    // maxKeys, max-keys, MAX_KEYS: the same name.
    if (n === g) return name;
    const d = g.length >= 3 && (n.includes(g) || g.includes(n)) ? 1 : distance(g, n);
    if (!best || d < best.d) best = { name, d };
  }
  return best && best.d <= Math.max(2, Math.floor(given.length / 3)) ? best.name : undefined;
}

/** The message for arguments an object does not take. */
export function unknownArguments(keys: readonly string[], accepted: readonly string[]): string {
  const nearest = keys.map((k) => [k, nearestName(k, accepted)] as const);
  const each = nearest.map(([k, n]) => `"${k}"${n ? ` (did you mean "${n}"?)` : ''}`).join(', ');
  const takes = accepted.length ? `Accepted: ${accepted.join(', ')}.` : 'It takes no arguments.';
  return `Unknown argument${keys.length === 1 ? '' : 's'} ${each}; nothing was done. ${takes}`;
}

/** An object schema that refuses unknown keys with unknownArguments' message. */
export function strictObject<S extends z.ZodRawShape>(shape: S): z.ZodObject<S, z.core.$strict> {
  const accepted = Object.keys(shape);
  return z.strictObject(shape, {
    error: (issue) => (issue.code === 'unrecognized_keys' ? unknownArguments(issue.keys, accepted) : undefined),
  });
}

const inputs = new WeakMap<AnyTool, z.ZodObject>();

/** A tool's arguments as one strict object: what McpServer and the HTTP direct path both check. */
export function toolInputSchema(tool: AnyTool): z.ZodObject {
  let s = inputs.get(tool);
  if (!s) inputs.set(tool, (s = strictObject(tool.input)));
  return s;
}

type Json = { [k: string]: unknown };
const JSON_TYPES = ['string', 'number', 'boolean', 'null', 'array', 'object'] as const;
/** Keywords that constrain a value (a schema with none of them accepts anything). */
const CONSTRAINING = /^(type|enum|const|anyOf|oneOf|allOf|not|properties|items|required|minimum|maximum|minLength|maxLength|pattern|format|minItems|maxItems|additionalProperties|\$ref)$/;
const isEmpty = (v: unknown) => !!v && typeof v === 'object' && !Array.isArray(v) && Object.keys(v).length === 0;

/**
 * The portable subset (what `mcp-inspector --cli --strict` accepts): type arrays become `anyOf`
 * branches of one type each; `{}` under additionalProperties or items (any value, the default
 * anyway) goes; `propertyNames: {type: string}` (JSON keys are strings) goes; a value that may be
 * any JSON says so as `anyOf` of the JSON types instead of an empty schema.
 */
function portable(node: Json, root: boolean): Json {
  if (Array.isArray(node.type)) {
    node.anyOf = (node.type as string[]).map((type) => ({ type }));
    delete node.type;
  }
  const names = node.propertyNames as Json | undefined;
  if (names && Object.keys(names).length === 1 && names.type === 'string') delete node.propertyNames;
  if (isEmpty(node.additionalProperties)) delete node.additionalProperties;
  if (isEmpty(node.items)) delete node.items;
  if (!root && !Object.keys(node).some((k) => CONSTRAINING.test(k))) node.anyOf = JSON_TYPES.map((type) => ({ type }));
  for (const key of ['properties'] as const) {
    const props = node[key] as Record<string, Json> | undefined;
    if (props) for (const p of Object.values(props)) portable(p, false);
  }
  for (const key of ['items', 'additionalProperties'] as const) {
    const sub = node[key];
    if (sub && typeof sub === 'object' && !Array.isArray(sub)) portable(sub as Json, false);
  }
  for (const key of ['anyOf', 'oneOf', 'allOf'] as const) {
    const subs = node[key];
    if (Array.isArray(subs)) for (const s of subs) portable(s as Json, false);
  }
  return node;
}

/** A zod object as the JSON Schema tools/list carries (draft-07 keywords, no `$schema` line). */
export function jsonSchemaOf(schema: z.ZodType, io: 'input' | 'output'): Json {
  const out = z.toJSONSchema(schema, { target: 'draft-7', io }) as Json;
  delete out.$schema;
  return portable(out, true);
}
