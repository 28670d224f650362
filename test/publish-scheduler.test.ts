/**
 * When diagnostics are published after edits (server/lsp/publish-scheduler.ts), on a simulated clock:
 * the analysis "takes" time by advancing the clock inside publish, and setTimeout is mocked so the
 * test controls when held changes fire. The LSP-level check (30 rapid edits on a 48 KB config) is
 * BUG 8 in test/fuzz.test.ts.
 */
import assert from 'node:assert/strict';
import { afterEach, beforeEach, describe, mock, test } from 'node:test';
import { PublishScheduler } from '../server/lsp/publish-scheduler';

describe('PublishScheduler', () => {
  let clock = 0;
  let published: { uri: string; at: number }[] = [];
  /** Each publish takes `analysisMs` of simulated time, as a real analysis takes real time. */
  let analysisMs = 0;
  const scheduler = () =>
    new PublishScheduler(
      (uri) => {
        published.push({ uri, at: clock });
        clock += analysisMs;
      },
      { quietMs: 10, maxDelayMs: 200 },
      () => clock,
    );
  const advance = (ms: number) => {
    clock += ms;
    mock.timers.tick(ms);
  };

  beforeEach(() => {
    clock = 1000;
    published = [];
    analysisMs = 0;
    mock.timers.enable({ apis: ['setTimeout'] });
  });
  afterEach(() => mock.timers.reset());

  test('a change is published at once when analyses are cheaper than the pace of edits, or cheaper than the quiet period', () => {
    const s = scheduler();
    analysisMs = 20;
    for (let k = 0; k < 5; k++) {
      s.changed('a');
      assert.equal(published.length, k + 1, `change ${k + 1} published synchronously`);
      advance(50);
    }
    // 5 ms analyses, the next edit 1 ms after each: never held (a client that sends as soon as it has diagnostics).
    analysisMs = 5;
    for (let k = 0; k < 5; k++) {
      s.changed('b');
      assert.equal(published.filter((p) => p.uri === 'b').length, k + 1);
      advance(1);
    }
  });

  test('edits arriving faster than a 150 ms analysis are coalesced into one publish, 10 ms after the last of them', () => {
    const s = scheduler();
    analysisMs = 150;
    s.changed('a'); // published at once; the clock is now 150 ms later
    assert.equal(published.length, 1);
    // 29 more edits queued during that analysis, handled one after another right after it.
    for (let k = 0; k < 29; k++) {
      advance(0.01);
      s.changed('a');
    }
    assert.equal(published.length, 1, 'held while the queue drains');
    advance(9);
    assert.equal(published.length, 1);
    advance(2);
    assert.equal(published.length, 2, 'one publish for the newest version');
    advance(1000);
    assert.equal(published.length, 2, 'and nothing more');
  });

  test('a client that never pauses still gets diagnostics: a held change waits at most 200 ms', () => {
    const s = scheduler();
    analysisMs = 500;
    s.changed('a');
    const firstHeldAt = clock + 1;
    for (let k = 0; k < 400 && published.length < 2; k++) {
      advance(1);
      s.changed('a'); // every 1 ms: the 10 ms quiet period never comes
      // A publish takes 500 ms of clock here; stop feeding once it happened.
    }
    assert.equal(published.length, 2);
    assert.ok(
      published[1]!.at - firstHeldAt <= 200,
      `published ${published[1]!.at - firstHeldAt} ms after the first held change`,
    );
    assert.ok(published[1]!.at - firstHeldAt >= 190, 'not before the deadline, since edits kept coming');
  });

  test('documents are independent, and a closed document publishes nothing more', () => {
    const s = scheduler();
    analysisMs = 100;
    s.changed('a');
    advance(1);
    s.changed('a'); // held: 1 ms after a 100 ms analysis
    s.changed('b'); // another document: not held by a's analysis
    assert.deepEqual(
      published.map((p) => p.uri),
      ['a', 'b'],
    );
    s.forget('a'); // closed before the held change fired
    advance(1000);
    assert.deepEqual(
      published.map((p) => p.uri),
      ['a', 'b'],
    );
    s.changed('a'); // reopened: no memory of the old analysis, published at once
    assert.deepEqual(
      published.map((p) => p.uri),
      ['a', 'b', 'a'],
    );
  });
});
