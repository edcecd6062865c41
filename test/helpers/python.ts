/**
 * Real Python as the reference: `json` and `hashlib` for manifests and top hashes (quilt3's
 * algorithms restated in a few lines), `fnmatch`, `pathlib` and `urllib` for quilt3's local rules.
 */
import { spawnSync } from 'node:child_process';

const MiB = 1024 * 1024;

export const hasPython = spawnSync('python3', ['--version']).status === 0;

export function python(code: string, input = '', args: string[] = []): string {
  const r = spawnSync('python3', ['-c', code, ...args], { input, encoding: 'utf8', maxBuffer: 256 * MiB });
  if (r.error) throw r.error;
  if (r.status !== 0) throw new Error(`python3 failed: ${r.stderr}`);
  return r.stdout;
}

/**
 * quilt3's Package._calculate_top_hash over a manifest, restated; also checks that each line is
 * what quilt3's writer (json.JSONEncoder(ensure_ascii=False)) would produce for the same dict and
 * that entries are already in walk order.
 */
export const PY_TOP_HASH = `
import sys, json, hashlib
lines = sys.stdin.buffer.read().decode('utf-8').split('\\n')
assert lines[-1] == '', 'no final newline'
lines = lines[:-1]
for i, l in enumerate(lines):
    again = json.JSONEncoder(ensure_ascii=False).encode(json.loads(l))
    assert again == l, 'line %d differs:\\n%s\\n%s' % (i + 1, l, again)
header = json.loads(lines[0])
header.pop('top_hash', None)
entries = [json.loads(l) for l in lines[1:]]
keyed = [tuple(e['logical_key'].split('/')) for e in entries]
assert keyed == sorted(keyed), 'not in walk order'
entries.sort(key=lambda e: tuple(e['logical_key'].split('/')))
h = hashlib.sha256()
enc = json.JSONEncoder(sort_keys=True, separators=(',', ':')).encode
h.update(enc(header).encode())
for e in entries:
    h.update(enc({'hash': e['hash'], 'logical_key': e['logical_key'], 'meta': e.get('meta') or {}, 'size': e['size']}).encode())
sys.stdout.write(h.hexdigest())
`;
