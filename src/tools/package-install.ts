import { z } from 'zod';
import { count, formatBytes } from '../format.js';
import { localAccess } from '../local/access.js';
import { fileUriOf } from '../local/paths.js';
import { filesToInstall, installFiles, installLease, registerRevision } from '../packages/install.js';
import { parsePackageName } from '../packages/names.js';
import { openRegistry } from '../packages/registries.js';
import { resolveRevision } from '../packages/registry.js';
import { lines } from './args.js';
import { defineTool } from './define.js';
import { hashOrTagArg, packageNameArg, registryArg } from './package-args.js';

export const packageInstall = defineTool({
  name: 'package_install',
  title: 'Install a package locally',
  description:
    "Download a revision's files, hashes checked, into a local folder (default: quilt3's install location) and record it in the local registry, as quilt3 install.",
  toolset: 'packages',
  kind: 'write',
  desktopOnly: true,
  input: {
    bucket: registryArg,
    name: packageNameArg,
    hash_or_tag: hashOrTagArg,
    path: z.string().optional().describe('Only this folder or file'),
    dest: z.string().optional().describe('Folder to write to'),
    overwrite: z.boolean().default(false).describe('Replace existing files (else kept)'),
  },
  output: {
    bucket: z.string(),
    name: z.string(),
    top_hash: z.string(),
    dest: z.string().describe('Folder the files are in'),
    files: z.number(),
    bytes: z.number(),
    written: z.number(),
    unchanged: z.number().describe('Already there with the right bytes'),
    kept: z.array(z.string()).describe('Existing files with other bytes, left as they were'),
    registered: z.string().optional().describe('Where the revision was recorded (the local registry, with its tag)'),
    note: z.string().optional(),
  },
  async handler(args, ctx, extras) {
    const local = localAccess(ctx, 'package_install');
    const reg = await openRegistry(ctx, args.bucket);
    const name = parsePackageName(args.name);
    const dest = args.dest
      ? await local.roots.resolve(args.dest, 'The install folder', 'write')
      : await local.roots.check(`${local.installLocation}/${name}`, 'The install folder', 'write');
    const hash = await resolveRevision(reg, name, args.hash_or_tag);
    const lease = installLease(name, hash);
    let done: Awaited<ReturnType<typeof installFiles>>;
    try {
      const files = await filesToInstall(reg, name, hash, args.path, lease);
      done = await installFiles(ctx, local, files, dest, args.overwrite, extras);
    } finally {
      lease.release();
    }
    // As quilt3 install: the revision is recorded in the local registry (unless it came from there).
    const localReg = await openRegistry(ctx, 'local', 'write');
    const recorded = localReg.uri === reg.uri ? undefined : await registerRevision(reg, name, hash, localReg);
    const registered = recorded?.tag ? `${localReg.id}, tag ${recorded.tag}` : undefined;
    const notes = [
      done.kept.length ? `${count(done.kept.length, 'existing file')} with other bytes kept (pass overwrite=true to replace): ${done.kept.slice(0, 20).join(', ')}${done.kept.length > 20 ? ', ...' : ''}.` : undefined,
      recorded?.note ? `Not recorded in the local registry: ${recorded.note}` : undefined,
    ].filter((n): n is string => n !== undefined);
    const note = notes.length ? notes.join(' ') : undefined;
    const data = { bucket: reg.id, name, top_hash: hash, dest, files: done.files, bytes: done.bytes, written: done.written, unchanged: done.unchanged, kept: done.kept, registered, note };
    const text = lines(
      `Installed ${name}@${hash} from ${reg.id} into ${dest} (${fileUriOf(dest)}): ${count(done.files, 'file')}, ${formatBytes(done.bytes)}; ${done.written} written, ${done.unchanged} already there.`,
      registered ? `Recorded in the local registry (${localReg.uri}), tag ${recorded?.tag}: browse it with bucket="local".` : undefined,
      done.kept.length ? `Kept (not overwritten): ${done.kept.join(', ')}` : undefined,
      note,
    );
    return { data, text };
  },
});
