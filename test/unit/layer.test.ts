import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ImageTsError } from '../../src/domain/errors.js';
import { classifyEntry, entrySegments, linkTargetSegments } from '../../src/domain/layer/entry-path.js';
import { LayerStateMachine, type LayerState } from '../../src/domain/layer/layer-state.js';
import { Limiter, SingleFlight } from '../../src/domain/pull/limiter.js';

const unsafe = (e: unknown) => e instanceof ImageTsError && e.code === 'UNSAFE_LAYER';

describe('entry paths', () => {
  it('roots absolute paths at the layer and drops . segments', () => {
    assert.deepEqual(entrySegments('/etc/passwd'), ['etc', 'passwd']);
    assert.deepEqual(entrySegments('./a/./b/'), ['a', 'b']);
    assert.deepEqual(entrySegments('./'), []);
    assert.deepEqual(entrySegments('a/../b'), ['b']);
  });
  it('refuses paths that climb out', () => {
    for (const p of ['../x', 'a/../../x', '/..', './../etc', 'a/b/../../../c']) assert.throws(() => entrySegments(p), unsafe, p);
    assert.throws(() => entrySegments('a\0b'), unsafe);
  });
  it('maps whiteouts and opaque markers', () => {
    assert.deepEqual(classifyEntry('etc/.wh.motd'), { kind: 'whiteout', segments: ['etc', 'motd'] });
    assert.deepEqual(classifyEntry('./var/cache/.wh..wh..opq'), { kind: 'opaque', segments: ['var', 'cache'] });
    assert.deepEqual(classifyEntry('.wh..wh..opq'), { kind: 'opaque', segments: [] });
    assert.deepEqual(classifyEntry('usr/bin/ls'), { kind: 'regular', segments: ['usr', 'bin', 'ls'] });
    for (const p of ['a/.wh.', 'a/.wh..', 'a/.wh...', 'a/.wh..wh.x']) assert.throws(() => classifyEntry(p), unsafe, p);
  });
  it('re-anchors absolute hard-link targets and refuses escapes', () => {
    assert.deepEqual(linkTargetSegments('x', '/usr/bin/a'), ['usr', 'bin', 'a']);
    assert.throws(() => linkTargetSegments('x', '../../etc/passwd'), unsafe);
    assert.throws(() => linkTargetSegments('x', '/'), unsafe);
  });
});

describe('LayerStateMachine', () => {
  it('walks the happy paths and reports each step', () => {
    const seen: string[] = [];
    const m = new LayerStateMachine((from, to) => seen.push(`${from}>${to}`));
    for (const s of ['fetching', 'verifying', 'committed'] as LayerState[]) m.to(s);
    assert.deepEqual(seen, ['pending>fetching', 'fetching>verifying', 'verifying>committed']);
    assert.equal(m.done, true);
  });
  it('refuses skipped or backward steps', () => {
    const m = new LayerStateMachine();
    assert.throws(() => m.to('committed'));
    m.to('fetching');
    assert.throws(() => m.to('pending'));
    m.to('failed');
    assert.throws(() => m.to('fetching'));
  });
});

describe('Limiter and SingleFlight', () => {
  it('never runs more than the limit at once', async () => {
    const limiter = new Limiter(2);
    let active = 0;
    let peak = 0;
    await Promise.all(Array.from({ length: 8 }, () => limiter.run(async () => {
      active++;
      peak = Math.max(peak, active);
      await new Promise((r) => setTimeout(r, 5));
      active--;
    })));
    assert.equal(peak, 2);
  });
  it('shares one flight per key and forgets it when done', async () => {
    const flights = new SingleFlight<number>();
    let calls = 0;
    const task = async () => {
      calls++;
      await new Promise((r) => setTimeout(r, 5));
      return 7;
    };
    const a = flights.do('k', task);
    const b = flights.do('k', task);
    assert.equal(a.shared, false);
    assert.equal(b.shared, true);
    assert.deepEqual(await Promise.all([a.promise, b.promise]), [7, 7]);
    assert.equal(calls, 1);
    assert.equal(flights.has('k'), false);
  });
});
