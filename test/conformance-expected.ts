/**
 * Every MCP conformance-suite server scenario that does not pass against quilt-mcp, per HTTP mode,
 * and why. test/conformance.test.ts fails when a scenario's outcome differs from this list in
 * either direction, so the list stays true: a new failure must be fixed or added here with its
 * reason; an entry that starts passing must be removed.
 *
 * Outcomes (see judge() in test/helpers/conformance.ts):
 * - `fail`: the suite reports a FAILURE or WARNING;
 * - `hollow`: the suite reports a pass that verified nothing real (here: it judged the server's
 *   "tool not found" answer). Counted as not applicable, never as a pass.
 *
 * Most scenarios exercise fixtures the suite's reference server has (`test_*` tools, `test://`
 * resources, `test_*` prompts) or capabilities quilt-mcp does not declare (prompts, completions,
 * resource subscriptions; it never asks the client for sampling or elicitation). Implementing
 * fixtures in a production server to please a test suite would ship test tools to users.
 * `resources-list` passes for real: it checks the shape of what resources/list returns, and the
 * server lists `auth://status` (and the packages of the token's or visible buckets).
 */

export type Mode = 'desktop' | 'jwt';
export const MODES: readonly Mode[] = ['desktop', 'jwt'];

export interface ExpectedOutcome {
  scenario: string;
  modes: readonly Mode[];
  outcome: 'fail' | 'hollow';
  reason: string;
}

const BOTH = MODES;

const fixtureTool = (scenario: string, tool: string, more = ''): ExpectedOutcome => ({
  scenario,
  modes: BOTH,
  outcome: 'fail',
  reason: `Fixture tool \`${tool}\` is not part of this server's tool set.${more ? ` ${more}` : ''}`,
});

const FIXTURE_RESOURCE = (uri: string) =>
  `Fixture resource \`${uri}\` is not one of this server's resources (it serves quilt+s3://, s3:// and auth://status URIs), so resources/read answers -32002 "Resource ${uri} not found", the spec's code for an unknown resource; the suite counts the error as a failure.`;
const NO_SUBSCRIBE =
  'The server declares `resources` without `subscribe` (S3 and the package registry send it no change events, and a stateless HTTP server has no stream to notify on), so resources/subscribe and resources/unsubscribe answer -32601 Method not found, the spec\'s answer for an undeclared capability.';
const NO_PROMPTS = 'The server declares no `prompts` capability, so prompts/* answer -32601 Method not found, the spec\'s answer for an undeclared capability.';

export const EXPECTED: readonly ExpectedOutcome[] = [
  {
    scenario: 'completion-complete',
    modes: BOTH,
    outcome: 'fail',
    reason:
      'The server declares no `completions` capability (it has no prompts, and its resource templates\' arguments are buckets, package names and keys the caller lists with tools); completing the fixture prompt `test_prompt_with_arguments` gets -32601 Method not found.',
  },
  {
    scenario: 'tools-call-simple-text',
    modes: BOTH,
    outcome: 'hollow',
    reason:
      'Fixture tool `test_simple_text` is not part of this server\'s tool set. The suite reports a pass anyway: the SDK answers an unknown tool with an isError result whose text is "Tool test_simple_text not found", and the check only looks for a text item.',
  },
  fixtureTool('tools-call-image', 'test_image_content'),
  fixtureTool('tools-call-audio', 'test_audio_content'),
  fixtureTool('tools-call-embedded-resource', 'test_embedded_resource'),
  fixtureTool('tools-call-mixed-content', 'test_multiple_content_types'),
  fixtureTool('tools-call-with-logging', 'test_tool_with_logging', '(Over HTTP the server sends no notifications/message: log lines go to stderr; only stdio forwards them to the client.)'),
  {
    scenario: 'tools-call-error',
    modes: BOTH,
    outcome: 'hollow',
    reason:
      'Fixture tool `test_error_handling` is not part of this server\'s tool set. The suite reports a pass anyway: the "Tool test_error_handling not found" answer is itself an isError result with a text, which is all the check looks at. (Real tool errors are isError results; the tool tests cover them.)',
  },
  fixtureTool('tools-call-with-progress', 'test_tool_with_progress', '(`athena_query_execute` does report notifications/progress when a call carries a progressToken.)'),
  fixtureTool('tools-call-sampling', 'test_sampling', 'The server never asks the client for sampling.'),
  fixtureTool('tools-call-elicitation', 'test_elicitation', 'The server never asks the client for input (elicitation).'),
  fixtureTool('json-schema-2020-12', 'json_schema_2020_12_tool', '(A scenario the suite marks pending.)'),
  fixtureTool('elicitation-sep1034-defaults', 'test_elicitation_sep1034_defaults', 'The server never asks the client for input (elicitation).'),
  fixtureTool('elicitation-sep1330-enums', 'test_elicitation_sep1330_enums', 'The server never asks the client for input (elicitation).'),
  {
    scenario: 'server-sse-polling',
    modes: BOTH,
    outcome: 'hollow',
    reason:
      'Fixture tool `test_reconnection` is not part of this server\'s tool set (a scenario the suite marks pending). tools/call is answered as application/json, which the transport spec lets the server choose for a POST (the client accepts both), so the scenario\'s SSE checks (a priming event with an event id, a `retry` field) find no event stream and report INFO only: nothing was verified. The transport is stateless (any replica answers any request) and keeps no event store, so there is no stream to resume with Last-Event-ID; GET is answered 405, as the spec allows.',
  },
  { scenario: 'resources-read-text', modes: BOTH, outcome: 'fail', reason: FIXTURE_RESOURCE('test://static-text') },
  { scenario: 'resources-read-binary', modes: BOTH, outcome: 'fail', reason: FIXTURE_RESOURCE('test://static-binary') },
  {
    scenario: 'resources-templates-read',
    modes: BOTH,
    outcome: 'fail',
    reason: `${FIXTURE_RESOURCE('test://template/123/data')} (The fixture template \`test://template/{id}/data\` is not one of this server's templates.)`,
  },
  { scenario: 'resources-subscribe', modes: BOTH, outcome: 'fail', reason: NO_SUBSCRIBE },
  { scenario: 'resources-unsubscribe', modes: BOTH, outcome: 'fail', reason: NO_SUBSCRIBE },
  { scenario: 'prompts-list', modes: BOTH, outcome: 'fail', reason: NO_PROMPTS },
  { scenario: 'prompts-get-simple', modes: BOTH, outcome: 'fail', reason: `${NO_PROMPTS} (Fixture prompt \`test_simple_prompt\`.)` },
  { scenario: 'prompts-get-with-args', modes: BOTH, outcome: 'fail', reason: `${NO_PROMPTS} (Fixture prompt \`test_prompt_with_arguments\`.)` },
  { scenario: 'prompts-get-embedded-resource', modes: BOTH, outcome: 'fail', reason: `${NO_PROMPTS} (Fixture prompt \`test_prompt_with_embedded_resource\`.)` },
  { scenario: 'prompts-get-with-image', modes: BOTH, outcome: 'fail', reason: `${NO_PROMPTS} (Fixture prompt \`test_prompt_with_image\`.)` },
  {
    scenario: 'dns-rebinding-protection',
    modes: ['jwt'],
    outcome: 'fail',
    reason:
      'Outside the scenario\'s scope (localhost servers without authentication). JWT mode serves behind a load balancer under any Host (unless MCP_ALLOWED_HOSTS is set) and needs a signed JWT for everything but the handshake, which a rebinding page cannot have. The foreign Host/Origin request is refused (403, by its Origin), as required; the "valid localhost" request carries Origin http://localhost:<port>, which JWT mode refuses like any browser origin not in MCP_ALLOWED_ORIGINS. Desktop mode passes both checks.',
  },
];

/** The expected outcome of a scenario in a mode: `pass` unless listed. */
export function expectedOutcome(scenario: string, mode: Mode): ExpectedOutcome | undefined {
  return EXPECTED.find((e) => e.scenario === scenario && e.modes.includes(mode));
}
