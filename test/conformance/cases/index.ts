// index.ts: every conformance case, one line each. Adding a case = one file + one line here.
import type { ConformanceCase } from '../suite';
import { applydiffAtomic } from './applydiff-atomic';
import { applydiffGzip } from './applydiff-gzip';
import { badIds } from './bad-ids';
import { changes } from './changes';
import { concurrency } from './concurrency';
import { createBase } from './create-base';
import { createEmpty } from './create-empty';
import { deepChain50 } from './deep-chain-50';
import { diffApply } from './diff-apply';
import { existsRemove } from './exists-remove';
import { getputCounted } from './getput-counted';
import { metadataRoundtrip } from './metadata-roundtrip';
import { snapshot } from './snapshot';
import { status } from './status';
import { toStringCase } from './to-string';
import { whiteoutOpaque } from './whiteout-opaque';

export const cases: readonly ConformanceCase[] = [
  createEmpty,
  createBase,
  snapshot,
  deepChain50,
  diffApply,
  changes,
  whiteoutOpaque,
  applydiffGzip,
  applydiffAtomic,
  metadataRoundtrip,
  getputCounted,
  concurrency,
  existsRemove,
  status,
  badIds,
  toStringCase,
];
