/** The README's tool list, the bundle manifest and the code agree; the manifest is valid MCPB. */
import { execFile } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';
import { MANIFEST, README, renderManifest, renderReadme } from '../scripts/docs.js';

describe('generated documentation', () => {
  it('README tool table matches the tool definitions (run `npm run docs`)', () => {
    const current = readFileSync(README, 'utf8');
    expect(current).toBe(renderReadme(current));
  });

  it('manifest.json tools and version match the code (run `npm run docs`)', () => {
    const current = readFileSync(MANIFEST, 'utf8');
    expect(current).toBe(renderManifest(current));
  });

  it('manifest.json passes `mcpb validate`', async () => {
    const mcpb = fileURLToPath(new URL('../node_modules/.bin/mcpb', import.meta.url));
    const { stdout } = await promisify(execFile)(mcpb, ['validate', MANIFEST]);
    expect(stdout).toContain('validation passes');
  });
});
