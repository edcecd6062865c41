// The workflow checker's worker, started as on a machine too busy to load it quickly: a second
// passes before the real entry loads (jobs posted meanwhile wait in the port, as they would).
await new Promise((resolve) => setTimeout(resolve, 1_000));
await import('../../dist/packages/workflow-worker-main.js');
