import { describe, expect, it } from 'vitest';

import { DraftLength } from './draft-length.js';

describe('DraftLength', () => {
  it('a fixed length never changes', () => {
    const length = new DraftLength(3, 3, 12);
    length.record(3, 0, 18);
    expect(length.next()).toBe(3);
  });

  it('adaptive: starts at 4, grows with acceptance, shrinks with rejections, within 1 ..< max', () => {
    const accepting = new DraftLength('adaptive', 8, 12);
    expect(accepting.next()).toBe(4);
    for (let i = 0; i < 20; i++) accepting.record(4, 4, 4 * 4);
    expect(accepting.next()).toBe(8);

    const rejecting = new DraftLength('adaptive', 8, 12);
    for (let i = 0; i < 20; i++) rejecting.record(4, 0, 4 * 4);
    expect(rejecting.next()).toBe(1);

    // The same acceptance makes longer drafts when drafting is cheaper.
    const cheap = new DraftLength('adaptive', 8, 12);
    const dear = new DraftLength('adaptive', 8, 12);
    for (let i = 0; i < 10; i++) {
      cheap.record(4, 3, 4 * 1);
      dear.record(4, 3, 4 * 6);
    }
    expect(cheap.next()).toBeGreaterThan(dear.next());
  });
});
