/**
 * The flood gate on a fake input and a stepped clock (no sleeps): lines are handled while the
 * bucket lasts, then reading pauses until a token is due, and resumes once the backlog is gone.
 */
import { Intake } from '../../src/hub/intake.js';
import { FloodGate, type GatedInput } from '../../src/transport/flood-gate.js';

/** Buffered lines, each costing a token; `log` says what the gate asked of it. */
class Lines implements GatedInput {
  handled: string[] = [];
  log: string[] = [];
  closing = false;
  gate!: FloodGate;
  constructor(public buffered: string[]) {}
  hasInput(): boolean {
    return !this.closing && this.buffered.length > 0;
  }
  nextInput(): boolean {
    const line = this.buffered.shift();
    if (line === undefined) return false;
    this.gate.take();
    this.handled.push(line);
    return true;
  }
  pauseInput(flood: boolean): void {
    this.log.push(flood ? 'pause' : 'pause (busy)');
  }
  resumeInput(): void {
    this.log.push('resume');
  }
  drained(): void {
    this.log.push('drained');
  }
}

function setup(rate: number, burst: number, lines: number): { input: Lines; gate: FloodGate; advance: (ms: number) => void } {
  let now = 1000;
  const input = new Lines(Array.from({ length: lines }, (_, i) => `line ${i}`));
  const gate = new FloodGate(rate, burst, () => now, input);
  input.gate = gate;
  return { input, gate, advance: (ms) => void (now += ms) };
}

test('a burst is handled at once; the rest waits, reading paused, and comes at the rate', () => {
  const { input, gate, advance } = setup(10, 3, 6);
  try {
    gate.arrived();
    expect(input.handled).toHaveLength(3);
    expect(input.log).toEqual(['pause']);
    expect(gate.paused).toBe(true);
    // Paused: more input is not handled when it comes, only when a token is due.
    input.buffered.push('line 6');
    gate.arrived();
    expect(input.handled).toHaveLength(3);
    advance(100); // one token at 10 per second
    gate.pump();
    expect(input.handled).toHaveLength(4);
    expect(input.log).toEqual(['pause']);
    advance(250);
    gate.pump();
    expect(input.handled).toHaveLength(6);
    advance(100);
    gate.pump();
    expect(input.handled).toEqual(Array.from({ length: 7 }, (_, i) => `line ${i}`));
    expect(input.log).toEqual(['pause', 'resume', 'drained']);
    expect(gate.paused).toBe(false);
  } finally {
    gate.stop();
  }
});

test('input within the budget is handled at once and never pauses reading', () => {
  const { input, gate } = setup(10, 5, 5);
  gate.arrived();
  expect(input.handled).toHaveLength(5);
  expect(input.log).toEqual(['drained']);
});

test('rate 0 is no limit', () => {
  const { input, gate } = setup(0, 1, 1000);
  gate.arrived();
  expect(input.handled).toHaveLength(1000);
  expect(input.log).toEqual(['drained']);
});

test('a closing link stops the gate: no more input is handled, and reading is the link\'s to resume', () => {
  const { input, gate, advance } = setup(10, 1, 3);
  gate.arrived();
  expect(gate.paused).toBe(true);
  input.closing = true;
  gate.stop();
  expect(gate.paused).toBe(false);
  advance(1000);
  gate.pump();
  expect(input.handled).toEqual(['line 0']);
  expect(input.log).toEqual(['pause', 'drained']);
});

test("a hub that takes no input (its cluster backlog is full) pauses every link's reading, not counted as a flood, until the backlog is down to half", () => {
  const intake = new Intake(4);
  const inputs = [0, 1].map((k) => {
    const input = new Lines([`${k}: a`, `${k}: b`]);
    // Each line handled hands an event on, as a message to a cluster room does.
    const next = input.nextInput.bind(input);
    input.nextInput = () => (next() ? (intake.started(), true) : false);
    input.gate = new FloodGate(0, 0, () => 0, input, intake);
    return input;
  });
  const [first, second] = inputs as [Lines, Lines];
  first.gate.arrived();
  second.gate.arrived();
  // Four handed on: the intake closes; the second link stops before its second line.
  expect([first.handled, second.handled]).toEqual([['0: a', '0: b'], ['1: a', '1: b']]);
  expect(intake.open).toBe(false);
  second.buffered.push('1: c');
  first.buffered.push('0: c');
  second.gate.arrived();
  first.gate.arrived();
  expect(second.log).toEqual(['drained', 'pause (busy)']);
  expect(first.log).toEqual(['drained', 'pause (busy)']);
  expect(second.handled).toHaveLength(2);
  intake.settled(); // 3 wait: still more than half
  expect(second.handled).toHaveLength(2);
  intake.settled(); // 2: half of 4, reading again; both links go on, and their lines make it 4 again
  expect(second.handled).toEqual(['1: a', '1: b', '1: c']);
  expect(first.handled).toEqual(['0: a', '0: b', '0: c']);
  expect([intake.backlog, intake.open]).toEqual([4, false]);
  expect(second.log).toEqual(['drained', 'pause (busy)', 'resume', 'drained']);
  // A link that closes while paused is forgotten: nothing wakes it.
  for (let i = 0; i < 2; i++) intake.started();
  first.buffered.push('0: d');
  first.gate.arrived();
  expect(first.log.at(-1)).toBe('pause (busy)');
  first.gate.stop();
  for (let i = 0; i < 4; i++) intake.settled();
  expect(first.handled).not.toContain('0: d');
});
