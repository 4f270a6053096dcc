// units.ts: human-readable sizes, as the engine's options take them (docker/go-units). One copy
// for every driver's size options (btrfs.min_space, size, overlay2.size, dm.basesize...).
// Pure string arithmetic: no I/O, no policy about which sizes a driver accepts.

const KiB = 1024;
/** Binary multipliers of RAMInBytes: k, m, g, t, p all mean powers of 1024. */
const BINARY: Readonly<Record<string, number>> = Object.freeze({
  k: KiB, m: KiB ** 2, g: KiB ** 3, t: KiB ** 4, p: KiB ** 5,
});

/** A plain decimal number: digits with an optional fraction (no sign, exponent, hex, inf). */
const NUMBER = /^(?:\d+(?:\.\d*)?|\.\d+)$/;

/**
 * Parses a size the way go-units RAMInBytes does: a number, an optional space, then an optional
 * unit — `b`, or one of k/m/g/t/p optionally followed by `b` or `ib` — case-insensitive, all
 * binary (`50M` = `50MB` = `50MiB` = 52428800). A fraction is truncated to whole bytes.
 * Throws RangeError naming the input when it is not a size or exceeds 2^53-1 bytes.
 */
export function ramInBytes(input: string): number {
  if (typeof input !== 'string') throw new TypeError(`Expected a string for size but received ${typeof input}`);
  const bad = (): RangeError => new RangeError(`invalid size: ${JSON.stringify(input)}`);
  const m = /^([0-9.]+) ?([A-Za-z]*)$/.exec(input);
  if (m === null || !NUMBER.test(m[1]!)) throw bad();
  let size = Number(m[1]);
  const suffix = m[2]!.toLowerCase();
  if (suffix !== '') {
    if (suffix.length > 3) throw bad();
    if (suffix[0] === 'b') {
      if (suffix.length > 1) throw bad();
    } else {
      const mul = BINARY[suffix[0]!];
      if (mul === undefined) throw bad();
      if ((suffix.length === 2 && suffix[1] !== 'b') || (suffix.length === 3 && suffix.slice(1) !== 'ib')) throw bad();
      size *= mul;
    }
  }
  size = Math.trunc(size);
  if (!Number.isSafeInteger(size)) throw new RangeError(`size too large: ${JSON.stringify(input)}`);
  return size;
}

/** Renders bytes with binary units for messages and status ('50MiB', '1.5GiB', '512B'). */
export function bytesToHuman(bytes: number): string {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB', 'PiB'];
  let v = bytes;
  let i = 0;
  while (v >= KiB && i < units.length - 1) {
    v /= KiB;
    i++;
  }
  const text = Number.isInteger(v) ? String(v) : v.toFixed(2).replace(/\.?0+$/, '');
  return `${text}${units[i]}`;
}
