// cpio.ts: a writer for the "newc" cpio format, the only one the kernel unpacks as an
// initramfs. Written here rather than spawning cpio(1): it is not installed everywhere, and it
// cannot make a /dev/console node without root. Every entry is owned by 0:0 with mtime 0, so
// the same inputs always give the same archive.

/** File type bits of st_mode. */
const S_IFDIR = 0o040000;
const S_IFREG = 0o100000;
const S_IFLNK = 0o120000;
const S_IFCHR = 0o020000;

function pad4(n: number): number {
  return (4 - (n % 4)) % 4;
}

export class CpioWriter {
  private readonly chunks: Buffer[] = [];
  private nextInode = 1;

  /** A directory; parents must have been added first. */
  dir(name: string, perm = 0o755): void {
    this.entry(name, S_IFDIR | perm, Buffer.alloc(0), 2);
  }

  file(name: string, data: Buffer, perm = 0o644): void {
    this.entry(name, S_IFREG | perm, data);
  }

  symlink(name: string, target: string): void {
    this.entry(name, S_IFLNK | 0o777, Buffer.from(target));
  }

  charDevice(name: string, major: number, minor: number, perm = 0o600): void {
    this.entry(name, S_IFCHR | perm, Buffer.alloc(0), 1, major, minor);
  }

  /** The whole archive, trailer included. */
  finish(): Buffer {
    this.entry('TRAILER!!!', 0, Buffer.alloc(0), 1);
    return Buffer.concat(this.chunks);
  }

  private entry(name: string, mode: number, data: Buffer, nlink = 1, rdevMajor = 0, rdevMinor = 0): void {
    const nameBytes = Buffer.from(`${name}\0`);
    const fields = [
      name === 'TRAILER!!!' ? 0 : this.nextInode++, mode, 0, 0, nlink, 0, data.length,
      0, 0, rdevMajor, rdevMinor, nameBytes.length, 0,
    ];
    const header = '070701' + fields.map((f) => f.toString(16).padStart(8, '0')).join('');
    this.chunks.push(Buffer.from(header, 'latin1'), nameBytes, Buffer.alloc(pad4(header.length + nameBytes.length)));
    this.chunks.push(data, Buffer.alloc(pad4(data.length)));
  }
}
