// make-tarballs.ts: generates the three layer tarballs `graphdriver demo` ships in demo/:
//   base.tar     a small root: /etc, /bin, /usr/share/doc, /var/cache/app with three files
//   changes.tar  adds /app/*, modifies /etc/motd, deletes /etc/old.conf (whiteout .wh.old.conf)
//   opaque.tar   makes /var/cache/app opaque (.wh..wh..opq) and puts one new file in it
// Each is a staged directory exported with the library's own exportTree (whiteouts are staged
// as the empty `.wh.*` files they are in AUFS-form tars). Owners are whoever runs this (root),
// times are fixed, so reruns give the same content. Run once after changing it, and commit the
// .tar files:  npx tsc -p . && node dist/demo/make-tarballs.js
import { createWriteStream, promises as fsp } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { pipeline } from 'node:stream/promises';
import { exportTree } from '../lib/archive/export';

type Spec = Record<string, string | { data: string; mode: number } | { symlink: string } | null>;

const EPOCH = new Date('2024-01-01T00:00:00Z');

const LAYERS: Array<[string, Spec]> = [
  ['base', {
    'etc/': null,
    'etc/hostname': 'demo\n',
    'etc/motd': 'Welcome to the graphdriver demo (base layer).\n',
    'etc/old.conf': 'obsolete=true\n',
    'bin/': null,
    'bin/hello': { data: '#!/bin/sh\necho "hello from the base layer"\n', mode: 0o755 },
    'bin/hi': { symlink: 'hello' },
    'usr/': null,
    'usr/share/': null,
    'usr/share/doc/': null,
    'usr/share/doc/demo.txt': 'Three layers: base, changes (add, modify, delete), opaque (an opaque directory).\n',
    'var/': null,
    'var/cache/': null,
    'var/cache/app/': null,
    'var/cache/app/index.db': 'stale index\n',
    'var/cache/app/blob-1': 'a'.repeat(512),
    'var/cache/app/blob-2': 'b'.repeat(1024),
  }],
  ['changes', {
    'app/': null,
    'app/main.js': 'console.log("hello from the changes layer");\n',
    'app/config.json': '{ "greeting": "hello" }\n',
    'etc/': null,
    'etc/motd': 'Welcome to the graphdriver demo (modified by the changes layer).\n',
    'etc/.wh.old.conf': '',
  }],
  ['opaque', {
    'var/': null,
    'var/cache/': null,
    'var/cache/app/': null,
    'var/cache/app/.wh..wh..opq': '',
    'var/cache/app/fresh.db': 'rebuilt index\n',
  }],
];

async function stage(dir: string, spec: Spec): Promise<void> {
  for (const [name, what] of Object.entries(spec)) {
    const p = path.join(dir, name);
    if (what === null) await fsp.mkdir(p, { mode: 0o755 });
    else if (typeof what === 'string') await fsp.writeFile(p, what, { mode: 0o644 });
    else if ('symlink' in what) await fsp.symlink(what.symlink, p);
    else await fsp.writeFile(p, what.data, { mode: what.mode });
  }
  // Modes exactly as given (umask aside), then fixed times, deepest first so directories keep theirs.
  const names = Object.keys(spec).sort((a, b) => b.split('/').length - a.split('/').length || b.localeCompare(a));
  for (const name of names) {
    const what = spec[name];
    const p = path.join(dir, name);
    if (what !== null && typeof what === 'object' && 'symlink' in what) { await fsp.lutimes(p, EPOCH, EPOCH); continue; }
    await fsp.chmod(p, what === null ? 0o755 : typeof what === 'string' ? 0o644 : what.mode);
    await fsp.utimes(p, EPOCH, EPOCH);
  }
  await fsp.chmod(dir, 0o755);
  await fsp.utimes(dir, EPOCH, EPOCH);
}

async function main(): Promise<void> {
  const out = path.resolve(__dirname, '..', '..', 'demo');
  const scratch = await fsp.mkdtemp(path.join(os.tmpdir(), 'graphdriver-make-tarballs-'));
  try {
    for (const [name, spec] of LAYERS) {
      const dir = path.join(scratch, name);
      await fsp.mkdir(dir);
      await stage(dir, spec);
      const file = path.join(out, `${name}.tar`);
      await pipeline(exportTree(dir), createWriteStream(file));
      console.log(`${file}: ${(await fsp.stat(file)).size} bytes`);
    }
  } finally {
    await fsp.rm(scratch, { recursive: true, force: true });
  }
}

main().catch((err: unknown) => {
  console.error(err);
  process.exitCode = 1;
});
