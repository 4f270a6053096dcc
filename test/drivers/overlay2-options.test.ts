// overlay2-options.test.ts: rootless unit tests of overlay2's pure parts: option parsing
// (options.ts), mount specs built from layer records and the lower-file codec (mounts.ts), and
// the mount limits and data string of mount/apply.ts + mount/spec.ts. Nothing is mounted.
import * as assert from 'node:assert/strict';
import { test } from 'node:test';
import { InvalidOptionError, MountLimitError } from '../../lib/errors';
import { checkOverlayLimits, parseMountInfo } from '../../lib/mount/apply';
import { mountData, unquote } from '../../lib/mount/spec';
import {
  MAX_CHAIN_DEPTH, childLowers, featureOptions, formatLowerFile, layerMount, parseLinkFile, parseLowerFile,
} from '../../lib/drivers/overlay2/mounts';
import { parseCreateOptions, parseOptions } from '../../lib/drivers/overlay2/options';
import { newShortId } from '../../lib/drivers/overlay2/records';
import { MS } from '../../lib/native';

const S1 = 'AAAAAAAAAAAAAAAAAAAAAAAAAA';
const S2 = 'BBBBBBBBBBBBBBBBBBBBBBBBBB';
const S3 = 'CCCCCCCCCCCCCCCCCCCCCCCCCC';
const all = { index: true, redirectDir: true, metacopy: true };

test('parseOptions: overlay2.size and override_kernel_check; unknown keys named', () => {
  assert.deepEqual(parseOptions([]), { quota: 0 });
  assert.deepEqual(parseOptions(['overlay2.size=1G']), { quota: 1024 ** 3 });
  assert.deepEqual(parseOptions(['Overlay2.Override_Kernel_Check=true']), { quota: 0 });
  assert.throws(() => parseOptions(['overlay2.size=lots']), (e: unknown) => e instanceof InvalidOptionError && /invalid size/.test(e.message));
  assert.throws(() => parseOptions(['overlay2.override_kernel_check=maybe']), /expected true or false/);
  assert.throws(() => parseOptions(['size=1G']), /did you mean overlay2\.size\?/);
  assert.throws(() => parseOptions(['dm.basesize=1G']), /option of the devicemapper driver/);
  assert.throws(() => parseOptions(['overlay2.size']), /malformed/);
  assert.equal(parseCreateOptions(undefined), undefined);
  assert.equal(parseCreateOptions({ storageOpt: { size: '10M' } }), 10 * 1024 * 1024);
  assert.throws(() => parseCreateOptions({ storageOpt: { inodes: '1' } }), /unknown storage option "inodes"/);
});

test('layerMount: no lowers -> no mount; upper layer rw with upper/work; committed ro with its diff on top', () => {
  assert.equal(layerMount('/h', { id: 'base', short: S1, lowers: [], committed: true }, all), null);
  const rw = layerMount('/h', { id: 'c', short: S3, lowers: [`l/${S2}`, `l/${S1}`], committed: false }, all, 'system_u:object_r:x:s0');
  assert.deepEqual(rw, {
    type: 'overlay', source: 'overlay', target: '/h/layers/c/merged', flags: 0,
    lowerdirs: [`/h/l/${S2}`, `/h/l/${S1}`],
    options: ['upperdir=/h/layers/c/diff', 'workdir=/h/layers/c/work', 'index=off', 'redirect_dir=off', 'metacopy=off',
      'context="system_u:object_r:x:s0"'],
  });
  const ro = layerMount('/h', { id: 'c', short: S3, lowers: [`l/${S2}`], committed: true }, { index: false, redirectDir: true, metacopy: false });
  assert.equal(ro?.flags, MS.MS_RDONLY);
  assert.deepEqual(ro?.lowerdirs, [`/h/l/${S3}`, `/h/l/${S2}`]);
  assert.deepEqual(ro?.options, ['redirect_dir=off']);
  assert.deepEqual(featureOptions({ index: false, redirectDir: false, metacopy: false }), []);
});

test('lower and link files: nearest first, strict syntax', () => {
  const lowers = childLowers(S2, [`l/${S1}`]);
  assert.deepEqual(lowers, [`l/${S2}`, `l/${S1}`]);
  assert.equal(formatLowerFile(lowers), `l/${S2}:l/${S1}`);
  assert.deepEqual(parseLowerFile(`l/${S2}:l/${S1}\n`), lowers);
  assert.deepEqual(parseLowerFile(''), []);
  assert.throws(() => parseLowerFile('l/short'), /malformed lower entry/);
  assert.throws(() => parseLowerFile(`../${S1}`), /malformed lower entry/);
  assert.equal(parseLinkFile(`${S1}\n`), S1);
  assert.throws(() => parseLinkFile('x'), /malformed link file/);
  for (let i = 0; i < 100; i++) assert.match(newShortId(), /^[A-Z2-7]{26}$/);
  assert.equal(MAX_CHAIN_DEPTH, 500);
});

test('mount limits: 500 lowers, 255-byte fsconfig values, one page of mount(2) data', () => {
  const spec = (n: number, home = '/var/lib/x/overlay2') => layerMount(home, {
    id: 'top', short: S1, lowers: Array.from({ length: n }, () => `l/${S2}`), committed: false,
  }, all)!;
  checkOverlayLimits(spec(500), 'lowerdir+');
  assert.throws(() => checkOverlayLimits(spec(501), 'lowerdir+'), (e: unknown) => e instanceof MountLimitError && /at most 500/.test(e.message));
  // A value over fsconfig's 255 bytes sends the mount through mount(2) data: refused only past a page.
  checkOverlayLimits(spec(2, `/${'x'.repeat(240)}`), 'lowerdir+');
  assert.throws(() => checkOverlayLimits(spec(200, `/${'x'.repeat(240)}`), 'lowerdir+'), /over the page-size limit of 4095 \(a value is longer than fsconfig's 255 bytes/);
  checkOverlayLimits(spec(40), 'mount-data');
  assert.throws(() => checkOverlayLimits(spec(200), 'mount-data'), /over the page-size limit of 4095/);
  assert.match(mountData(spec(2)), /^lowerdir=\/var\/lib\/x\/overlay2\/l\/B{26}:\/var\/lib\/x\/overlay2\/l\/B{26},upperdir=/);
  assert.equal(unquote('"a,b"'), 'a,b');
  assert.equal(unquote('plain'), 'plain');
});

test('parseMountInfo: fields, octal escapes, optional fields before the separator', () => {
  const text = '36 35 98:0 /mnt1 /mnt\\040with\\040space rw,noatime master:1 - overlay overlay rw,lowerdir=/a\n' +
    '37 35 98:0 / /x rw - ext4 /dev/sda1 rw,errors=remount-ro\n';
  assert.deepEqual(parseMountInfo(text), [
    { mountPoint: '/mnt with space', fsType: 'overlay', source: 'overlay', superOptions: 'rw,lowerdir=/a' },
    { mountPoint: '/x', fsType: 'ext4', source: '/dev/sda1', superOptions: 'rw,errors=remount-ro' },
  ]);
});
