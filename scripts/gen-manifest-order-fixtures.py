#!/usr/bin/env python3
"""Regenerates Python's outputs for test/fixtures/manifest-order (run after changing an input).

    python3 scripts/gen-manifest-order-fixtures.py [OUT_DIR]

Reads values.jsonl and manifest.jsonl from the fixture directory and writes, to OUT_DIR (default:
the fixture directory itself; test/packages-format.test.ts passes a temporary one to compare live):

- values.expected.jsonl: each line as quilt3's manifest writer encodes a dict, i.e.
  json.JSONEncoder(ensure_ascii=False).encode (separators ", " and ": ") of
  json.loads(line, object_pairs_hook=dict), so keys keep their source order;
- manifest.expected.jsonl / manifest.tophash: the manifest as quilt3 loads and dumps it
  (Package.load / Package._dump restated below), and its top hash;
- update.expected.jsonl / update.tophash: the same after a package_update that sets the message
  to UPDATE_MESSAGE and removes UPDATE_REMOVE (quilt3: _set_commit_message, delete, build).

The restatement follows quilt3 (api/python/quilt3/packages.py): the header is the first line
without top_hash; entries are written as {logical_key, physical_keys, size, hash, meta or {}} in
walk order (path segments sorted by code point); the top hash is sha256 over the header and each
entry {hash, logical_key, meta, size}, JSON-encoded with sort_keys=True, separators (",", ":").
The inputs hold no directory-metadata lines and only physical keys quilt3 prints back unchanged,
and their buckets have no workflow config, so quilt3 drops the header's workflow on update.
"""
import hashlib
import json
import os
import sys

HERE = os.path.join(os.path.dirname(os.path.abspath(__file__)), '..', 'test', 'fixtures', 'manifest-order')
UPDATE_MESSAGE = 'updated ✓'
UPDATE_REMOVE = 'b/removed.txt'

file_encode = json.JSONEncoder(ensure_ascii=False).encode
hash_encode = json.JSONEncoder(sort_keys=True, separators=(',', ':')).encode


def loads(line):
    return json.loads(line, object_pairs_hook=dict)


def load_manifest(lines):
    header = loads(lines[0])
    header.pop('top_hash', None)
    entries = []
    for line in lines[1:]:
        o = loads(line)
        entries.append({
            'logical_key': o['logical_key'],
            'physical_keys': o['physical_keys'],
            'size': o['size'],
            'hash': o['hash'],
            'meta': o.get('meta') or {},
        })
    return header, entries


def dump_manifest(header, entries):
    entries = sorted(entries, key=lambda e: e['logical_key'].split('/'))
    top = hashlib.sha256(hash_encode(header).encode())
    for e in entries:
        part = {'hash': e['hash'], 'logical_key': e['logical_key'], 'meta': e['meta'], 'size': e['size']}
        top.update(hash_encode(part).encode())
    text = ''.join(file_encode(o) + '\n' for o in [header, *entries])
    return text, top.hexdigest()


def write(out_dir, name, text):
    with open(os.path.join(out_dir, name), 'w', encoding='utf-8', newline='\n') as f:
        f.write(text)


def read_lines(name):
    with open(os.path.join(HERE, name), encoding='utf-8') as f:
        return [line.rstrip('\n') for line in f if line.strip()]


def main():
    out_dir = sys.argv[1] if len(sys.argv) > 1 else HERE
    write(out_dir, 'values.expected.jsonl', ''.join(file_encode(loads(line)) + '\n' for line in read_lines('values.jsonl')))

    header, entries = load_manifest(read_lines('manifest.jsonl'))
    text, top = dump_manifest(header, entries)
    write(out_dir, 'manifest.expected.jsonl', text)
    write(out_dir, 'manifest.tophash', top + '\n')

    header.update({'message': UPDATE_MESSAGE})
    header.pop('workflow', None)
    text, top = dump_manifest(header, [e for e in entries if e['logical_key'] != UPDATE_REMOVE])
    write(out_dir, 'update.expected.jsonl', text)
    write(out_dir, 'update.tophash', top + '\n')


if __name__ == '__main__':
    main()
