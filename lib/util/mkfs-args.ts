// mkfs-args.ts: the engine's `dm.mkfsarg` values (which it hands to mkfs.ext4 verbatim, one argv
// element each) turned into mkfsExt4 options, since we format in-process and never run mkfs.
// Only the mke2fs options that have a mkfsExt4 equivalent are taken; anything else is refused
// with InvalidOptionError naming the argument, rather than silently formatting differently.
//
// Accepted: -b SIZE, -i BYTES, -I SIZE, -j, -J size=MiB, -L LABEL, -m PERCENT, -N COUNT,
// -O FEATURE[,...] (^ to clear), -E nodiscard|discard|lazy_itable_init[=0|1]|lazy_journal_init[=0|1][,...],
// -U UUID, -t ext4, and -q / -F (console and safety switches of the mkfs program: no effect here).
// A value may be attached (`-b4096`), follow a space in the same element (`-b 4096`, as
// `--storage-opt dm.mkfsarg="-b 4096"` gives) or be the next element (`['-b', '4096']`).
import { InvalidOptionError } from '../errors';
import { EXT4_FEATURES, type MkfsExt4Options } from '../native';

type FeatureEdit = NonNullable<MkfsExt4Options['features']>[number];

const WITH_VALUE = new Set(['b', 'i', 'I', 'J', 'L', 'm', 'N', 'O', 'E', 'U', 't']);
const SWITCHES = new Set(['j', 'q', 'F']);
const SUPPORTED = '-b -i -I -j -J size= -L -m -N -O -E -U -t ext4 -q -F';
const UUID_RE = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

function refuse(arg: string, why: string): never {
  throw new InvalidOptionError(`devicemapper: dm.mkfsarg ${JSON.stringify(arg)}: ${why}`);
}

/** A decimal integer in [min, max] (mke2fs's strtoul; no unit suffixes). */
function integer(arg: string, flag: string, value: string, min: number, max: number): number {
  if (!/^\d+$/.test(value)) refuse(arg, `-${flag} needs a decimal integer, got ${JSON.stringify(value)}`);
  const n = Number(value);
  if (!Number.isSafeInteger(n) || n < min || n > max) refuse(arg, `-${flag} must be from ${min} to ${max}, got ${value}`);
  return n;
}

/** An extended option's 0/1 (absent value: 1), as mke2fs's lazy_itable_init[=N]. */
function flag01(arg: string, name: string, value: string | undefined): boolean {
  if (value === undefined || value === '1') return true;
  if (value === '0') return false;
  return refuse(arg, `-E ${name} takes 0 or 1, got ${JSON.stringify(value)}`);
}

/**
 * Parses `dm.mkfsarg` values into mkfsExt4 options (InvalidOptionError for anything mkfsExt4
 * cannot do). Later arguments override earlier ones, as with mke2fs; -O edits accumulate.
 */
export function parseMkfsArgs(args: readonly string[]): MkfsExt4Options {
  const opts: MkfsExt4Options = {};
  const features: FeatureEdit[] = [];
  let journalMiB: number | undefined;
  let journalArg = '';

  const apply = (arg: string, flag: string, value: string): void => {
    switch (flag) {
      case 'b': {
        const n = integer(arg, flag, value, 0, 65536);
        if (n !== 1024 && n !== 2048 && n !== 4096) refuse(arg, `-b must be 1024, 2048 or 4096, got ${value}`);
        opts.blockSize = n;
        break;
      }
      case 'i':
        opts.bytesPerInode = integer(arg, flag, value, 1024, 64 * 1024 * 1024);
        break;
      case 'I': {
        const n = integer(arg, flag, value, 0, 65536);
        if (n !== 128 && n !== 256) refuse(arg, `-I must be 128 or 256, got ${value}`);
        opts.inodeSize = n;
        break;
      }
      case 'N':
        opts.inodes = integer(arg, flag, value, 1, 0xffffffff);
        break;
      case 'm': {
        if (!/^\d+(\.\d+)?$/.test(value)) refuse(arg, `-m needs a percentage, got ${JSON.stringify(value)}`);
        const p = Number(value);
        if (p > 50) refuse(arg, `-m must be from 0 to 50, got ${value}`);
        opts.reservedPercent = p;
        break;
      }
      case 'L':
        if (Buffer.byteLength(value, 'utf8') > 16) refuse(arg, `-L: a label is at most 16 bytes, got ${Buffer.byteLength(value, 'utf8')}`);
        if (value.includes('\0')) refuse(arg, '-L: a label cannot contain NUL');
        opts.label = value;
        break;
      case 'U':
        if (value === 'random') break; // the default
        if (!UUID_RE.test(value)) refuse(arg, `-U needs a UUID (or "random"), got ${JSON.stringify(value)}`);
        opts.uuid = value.toLowerCase();
        break;
      case 't':
        if (value !== 'ext4') refuse(arg, `only ext4 is made in-process (no mkfs is run), not ${JSON.stringify(value)}`);
        break;
      case 'O':
        for (const word of value.split(/[,\s]+/).filter((w) => w !== '')) {
          const name = word.startsWith('^') ? word.slice(1) : word;
          if (!(EXT4_FEATURES as readonly string[]).includes(name) && name !== 'extents') {
            refuse(arg, `feature ${JSON.stringify(word)} is not supported (supported: ${EXT4_FEATURES.join(', ')}; ^ to clear)`);
          }
          features.push(word as FeatureEdit);
        }
        break;
      case 'E':
        for (const item of value.split(',').map((w) => w.trim()).filter((w) => w !== '')) {
          const eq = item.indexOf('=');
          const name = eq < 0 ? item : item.slice(0, eq);
          const v = eq < 0 ? undefined : item.slice(eq + 1);
          if (name === 'discard' && v === undefined) opts.discard = true;
          else if (name === 'nodiscard' && v === undefined) opts.discard = false;
          else if (name === 'lazy_itable_init') opts.lazyItableInit = flag01(arg, name, v);
          else if (name === 'lazy_journal_init') opts.lazyJournalInit = flag01(arg, name, v);
          else refuse(arg, `extended option ${JSON.stringify(item)} is not supported (supported: discard, nodiscard, lazy_itable_init[=0|1], lazy_journal_init[=0|1])`);
        }
        break;
      case 'J':
        for (const item of value.split(',').map((w) => w.trim()).filter((w) => w !== '')) {
          const m = /^size=(\d+)$/.exec(item);
          if (m === null) refuse(arg, `journal option ${JSON.stringify(item)} is not supported (only size=<MiB>)`);
          journalMiB = integer(arg, 'J size', m[1]!, 1, 40000 * 1024);
          journalArg = arg;
        }
        opts.journal = true;
        break;
      default:
        refuse(arg, `mkfs option -${flag} is not supported (supported: ${SUPPORTED})`);
    }
  };

  for (let k = 0; k < args.length; k++) {
    const raw = args[k];
    if (typeof raw !== 'string') throw new TypeError(`Expected strings for dm.mkfsarg values but received ${typeof raw}`);
    const arg = raw.trim();
    const m = /^-([A-Za-z])([\s\S]*)$/.exec(arg);
    if (m === null) refuse(raw, arg === '' ? 'empty argument' : `not an option (a device or block count is never passed: mkfsExt4 formats the base device whole)`);
    const flag = m[1]!;
    const rest = m[2]!;
    if (SWITCHES.has(flag)) {
      // Switches may be grouped, as getopt allows: -qF.
      for (const c of (flag + rest).split('')) {
        if (!SWITCHES.has(c)) refuse(raw, `mkfs option -${c} in a group of switches is not supported (supported switches: -j -q -F)`);
        if (c === 'j') opts.journal = true;
      }
      continue;
    }
    if (!WITH_VALUE.has(flag)) refuse(raw, `mkfs option -${flag} is not supported (supported: ${SUPPORTED})`);
    let value = rest.trim();
    if (value === '') {
      const next = args[k + 1];
      if (next === undefined) refuse(raw, `-${flag} needs a value`);
      value = next.trim();
      k++;
    }
    apply(raw, flag, value);
  }

  if (features.length > 0) {
    opts.features = features;
    // -O ^has_journal after -j/-J (or the reverse) is a contradiction mke2fs also refuses.
    const last = [...features].reverse().find((f) => f === 'has_journal' || f === '^has_journal');
    if (last === '^has_journal' && opts.journal === true) refuse(journalArg || '-j', 'a journal was asked for but -O ^has_journal turns it off');
  }
  if (journalMiB !== undefined) {
    // mke2fs: size in MiB -> blocks of the filesystem's block size.
    const blocks = Math.floor((journalMiB * 1024 * 1024) / (opts.blockSize ?? 4096));
    if (blocks < 1024 || blocks > 10240000) refuse(journalArg, `the journal must be 1024 to 10240000 blocks, got ${blocks}`);
    opts.journalBlocks = blocks;
  }
  return opts;
}
