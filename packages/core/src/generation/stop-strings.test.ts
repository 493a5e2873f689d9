import { describe, expect, it } from 'vitest';

import { StopStringMatcher } from './stop-strings.js';

describe('StopStringMatcher', () => {
  it('passes text through when there are no stop strings', () => {
    const m = new StopStringMatcher([]);
    expect(m.push('abc')).toEqual({ text: 'abc', stopped: false });
  });

  it('holds back a possible start of a stop string until it is decided', () => {
    const m = new StopStringMatcher(['</s>']);
    expect(m.push('hello <')).toEqual({ text: 'hello ', stopped: false });
    expect(m.push('/')).toEqual({ text: '', stopped: false });
    expect(m.push('x')).toEqual({ text: '</x', stopped: false });
    expect(m.flush()).toBe('');
  });

  it('finds a stop string split across deltas and cuts the text before it', () => {
    const m = new StopStringMatcher(['END', '###']);
    expect(m.push('one two E')).toEqual({ text: 'one two ', stopped: false });
    expect(m.push('ND three')).toEqual({ text: '', stopped: true });
  });

  it('stops at the earliest of several stop strings', () => {
    const m = new StopStringMatcher(['b', 'a']);
    expect(m.push('xxabyy')).toEqual({ text: 'xx', stopped: true });
  });

  it('flushes held-back text when generation ends otherwise', () => {
    const m = new StopStringMatcher(['stop']);
    expect(m.push('we st')).toEqual({ text: 'we ', stopped: false });
    expect(m.flush()).toBe('st');
  });
});
