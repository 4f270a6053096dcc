// errors.test.ts: every error class the library exports is an Error subclass with a stable
// code (instance and static), a name, and working instanceof; the "try the next driver"
// predicate accepts exactly the three selection errors.
import * as assert from 'node:assert/strict';
import { test } from 'node:test';
import {
  ArchiveError, DriverSelectionError, GraphdriverError, IncompatibleFsError, InvalidIdError, InvalidOptionError,
  LayerExistsError, LayerNotFoundError, MkfsError, NotMountedError, NotSupportedError, PrerequisitesError, SyscallError,
} from '../lib/index';
import { hasCode, isTryNextError } from '../lib/errors';

const cases: Array<[string, () => GraphdriverError, string]> = [
  ['NotSupportedError', () => new NotSupportedError(), 'ERR_GRAPHDRIVER_NOT_SUPPORTED'],
  ['PrerequisitesError', () => new PrerequisitesError(), 'ERR_GRAPHDRIVER_PREREQUISITES'],
  ['IncompatibleFsError', () => new IncompatibleFsError(), 'ERR_GRAPHDRIVER_INCOMPATIBLE_FS'],
  ['InvalidIdError', () => new InvalidIdError('bad'), 'ERR_GRAPHDRIVER_INVALID_ID'],
  ['LayerNotFoundError', () => new LayerNotFoundError('l1'), 'ERR_GRAPHDRIVER_LAYER_NOT_FOUND'],
  ['LayerExistsError', () => new LayerExistsError('l1'), 'ERR_GRAPHDRIVER_LAYER_EXISTS'],
  ['NotMountedError', () => new NotMountedError('l1'), 'ERR_GRAPHDRIVER_NOT_MOUNTED'],
  ['DriverSelectionError', () => new DriverSelectionError('none'), 'ERR_GRAPHDRIVER_SELECTION'],
  ['ArchiveError', () => new ArchiveError('bad tar', '../x'), 'ERR_GRAPHDRIVER_ARCHIVE'],
  ['InvalidOptionError', () => new InvalidOptionError('bad opt'), 'ERR_GRAPHDRIVER_INVALID_OPTION'],
  ['MkfsError', () => new MkfsError('too small', { syscall: 'ext2fs_initialize' }), 'ERR_GRAPHDRIVER_MKFS'],
];

const classes = new Map<string, { code: string }>([
  ['NotSupportedError', NotSupportedError], ['PrerequisitesError', PrerequisitesError], ['IncompatibleFsError', IncompatibleFsError],
  ['InvalidIdError', InvalidIdError], ['LayerNotFoundError', LayerNotFoundError], ['LayerExistsError', LayerExistsError],
  ['NotMountedError', NotMountedError], ['DriverSelectionError', DriverSelectionError], ['ArchiveError', ArchiveError],
  ['InvalidOptionError', InvalidOptionError], ['MkfsError', MkfsError],
]);

for (const [name, make, code] of cases) {
  test(`${name}: an Error with code ${code}`, () => {
    const e = make();
    assert.ok(e instanceof Error);
    assert.ok(e instanceof GraphdriverError);
    assert.equal(e.code, code);
    assert.equal(classes.get(name)!.code, code, `${name}.code (static)`);
    assert.equal(e.name, name);
    assert.ok(typeof e.message === 'string' && e.message.length > 0);
    assert.ok((e.stack ?? '').includes('errors.test'), 'stack does not point at the construction site');
    assert.ok(hasCode(e, code));
  });
}

test('the error classes are distinct (instanceof does not cross)', () => {
  const made = cases.map(([, make]) => make());
  for (const [i, [name]] of cases.entries()) {
    for (const [j, e] of made.entries()) {
      const cls = classes.get(name) as unknown as abstract new (...a: never[]) => Error;
      assert.equal(e instanceof cls, i === j, `${cases[j]![0]} instanceof ${name}`);
    }
  }
});

test('fields: layer ids, archive entry, cause', () => {
  assert.equal(new LayerNotFoundError('abc').id, 'abc');
  assert.match(new LayerNotFoundError('abc').message, /abc/);
  assert.equal(new LayerExistsError('abc').id, 'abc');
  const a = new ArchiveError('escapes the layer', '../etc/passwd');
  assert.equal(a.entry, '../etc/passwd');
  assert.match(a.message, /\.\.\/etc\/passwd/);
  assert.equal(new ArchiveError('no entry').entry, undefined);
  const m = new MkfsError('x', { syscall: 'ext2fs_initialize', path: '/dev/x', ext2Code: 'EXT2_ET_TOOSMALL' });
  assert.deepEqual([m.syscall, m.path, m.ext2Code], ['ext2fs_initialize', '/dev/x', 'EXT2_ET_TOOSMALL']);
  assert.ok(!Object.hasOwn(new MkfsError('x', { syscall: 'mkfsExt4' }), 'ext2Code'));
  const cause = new Error('root cause');
  assert.equal(new NotSupportedError('x', { cause }).cause, cause);
});

test('SyscallError carries the Node fs error fields', () => {
  const e = new SyscallError("umount2('/x', 0)", { code: 'EINVAL', errno: -22, syscall: 'umount2', path: '/x' });
  assert.ok(e instanceof Error);
  assert.ok(!(e instanceof GraphdriverError));
  assert.equal(e.name, 'SyscallError');
  assert.deepEqual([e.code, e.errno, e.syscall, e.path, e.dest], ['EINVAL', -22, 'umount2', '/x', undefined]);
  assert.ok(hasCode(e, 'EINVAL'));
  assert.ok(!hasCode(e, 'EBUSY'));
  assert.ok(!hasCode(null, 'EINVAL'));
});

test('isTryNextError is true for exactly the three selection errors', () => {
  assert.ok(isTryNextError(new NotSupportedError()));
  assert.ok(isTryNextError(new PrerequisitesError()));
  assert.ok(isTryNextError(new IncompatibleFsError()));
  for (const e of [new DriverSelectionError('x'), new InvalidIdError('x'), new Error('x'), { code: 'ERR_GRAPHDRIVER_NOT_SUPPORTED' }]) {
    assert.equal(isTryNextError(e), false, String((e as { name?: string }).name ?? 'plain object'));
  }
});
