#!/usr/bin/env node
/**
 * Entry point: read the configuration (a bad value exits with code 2 and a message naming the
 * variable), then run the chosen command. Heavy modules (AWS SDK, jose) load on first use.
 */
import { ConfigError, loadConfig, prepareProcessEnv, type Config } from './config.js';
import { createLogger } from './core/log.js';
import { nodeVersionWarning } from './core/node-version.js';
import { registerSecret } from './core/redact.js';

async function main(): Promise<void> {
  prepareProcessEnv();
  let config: Config;
  try {
    config = loadConfig();
  } catch (err) {
    if (err instanceof ConfigError) {
      process.stderr.write(`quilt-mcp: ${err.message}\n`);
      process.exit(2);
    }
    throw err;
  }
  registerSecret(config.jwt.secret);
  registerSecret(config.jwt.token);
  registerSecret(config.cursorSecret);
  registerSecret(config.metrics.token);

  switch (config.command.name) {
    case 'help': {
      const { printHelp } = await import('./cli/help.js');
      return printHelp();
    }
    case 'version': {
      const { printVersion } = await import('./cli/help.js');
      return printVersion();
    }
    case 'jwt-help':
      return void process.stdout.write(config.command.text);
    case 'jwt-generate':
    case 'jwt-inspect': {
      const { runJwtCommand } = await import('./cli/jwt.js');
      return runJwtCommand(config);
    }
    case 'serve':
      break;
  }

  const logger = createLogger(config.logLevel, undefined, config.logFormat);
  const oldNode = nodeVersionWarning(process.version);
  if (oldNode) logger.warning(oldNode);
  if (config.mode === 'jwt' && config.jwt.secretSsmParameter) {
    const { withSecretFromSsm, SsmSecretError } = await import('./auth/ssm-secret.js');
    try {
      config = await withSecretFromSsm(config, logger);
    } catch (err) {
      if (!(err instanceof SsmSecretError)) throw err;
      process.stderr.write(`quilt-mcp: ${err.message}\n`);
      process.exit(1);
    }
    registerSecret(config.jwt.secret);
    registerSecret(config.cursorSecret);
  }
  const [{ createAuthService }, { createServer }, { allTools, hiddenTools, selectTools }, { allResources, selectResources }] = await Promise.all([
    import('./auth/factory.js'),
    import('./server.js'),
    import('./tools/index.js'),
    import('./resources/index.js'),
  ]);
  const auth = await createAuthService(config, logger);
  const offer = { ...config.tools, mode: config.mode };
  const tools = selectTools(allTools, offer);
  const hidden = hiddenTools(allTools, offer);
  const resources = selectResources(allResources, config.tools);
  if (config.transport === 'http') {
    const { serveHttp } = await import('./transports/http.js');
    await serveHttp({ config, logger, auth, tools, createServer: (deps) => createServer({ ...deps, tools, hidden, resources, callTimeoutMs: config.tools.callTimeoutMs }) });
  } else {
    const { serveStdio } = await import('./transports/stdio.js');
    await serveStdio(createServer({ auth, logger, tools, hidden, resources, callTimeoutMs: config.tools.callTimeoutMs }), logger, auth.clientRoots);
  }
}

main().catch((err: unknown) => {
  process.stderr.write(`quilt-mcp: failed to start: ${err instanceof Error ? err.message : String(err)}\n`);
  process.exit(1);
});
