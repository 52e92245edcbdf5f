/**
 * Numeric options, for every subcommand: a bad value is refused while the arguments are parsed,
 * with one line naming the option, the value and the allowed range, and exit status 2 (a usage
 * error), never a message from deep inside Node once the server has started.
 */
import { execFile } from 'node:child_process';
import { Help, InvalidArgumentError, type Command, type Option } from 'commander';
import { buildProgram } from '../../src/cli/main.js';
import { MAX_TIMER_MS } from '../../src/cli/numbers.js';
import { BIN, CLI_ENV } from '../helpers/cli-child.js';

interface Run {
  status: number | null;
  stdout: string;
  stderr: string;
}

function roomcast(...args: string[]): Promise<Run> {
  return new Promise((resolve) => {
    execFile(process.execPath, [BIN, ...args], { env: CLI_ENV, timeout: 10_000 }, (err, stdout, stderr) => {
      const status = err === null ? 0 : typeof err.code === 'number' ? err.code : null;
      resolve({ status, stdout, stderr });
    });
  });
}

describe('the built CLI refuses bad numbers before doing anything', () => {
  const cases: [string[], string, string][] = [
    [['serve', '--port', '99999'], "'-p, --port <port>' argument '99999'", 'Give a port from 0 to 65535 (0 picks a free one).'],
    [['serve', '--port', '-1'], "'-p, --port <port>' argument '-1'", 'Give a port from 0 to 65535 (0 picks a free one).'],
    [['serve', '--port', 'abc'], "'-p, --port <port>' argument 'abc'", 'Give a port from 0 to 65535 (0 picks a free one).'],
    [['serve', '--port', ''], "'-p, --port <port>' argument ''", 'Give a port from 0 to 65535 (0 picks a free one).'],
    [['serve', '--port', '1e3'], "'-p, --port <port>' argument '1e3'", 'Give a port from 0 to 65535 (0 picks a free one).'],
    [['serve', '--http-port', '65536'], "'--http-port <port>' argument '65536'", 'Give a port from 0 to 65535 (0 picks a free one).'],
    [['serve', '--workers', '0'], "'--workers <n>' argument '0'", 'Give a whole number, 1 or more.'],
    [['serve', '--flood-rate', 'abc'], "'--flood-rate <lines>' argument 'abc'", 'Give a number of lines per second from 0 to 1000000 (0: no limit).'],
    [['serve', '--max-line', '10'], "'--max-line <bytes>' argument '10'", 'Give a number of bytes from 64 to '],
    [['serve', '--register-timeout', '9999999'], "'--register-timeout <seconds>' argument '9999999'", 'Give a number of seconds from 0 to 2147483 (0: never).'],
    [['serve', '--shutdown-timeout', '2.5'], "'--shutdown-timeout <ms>' argument '2.5'", `Give a number of milliseconds from 0 to ${MAX_TIMER_MS}.`],
    [['post', '127.0.0.1:1', '--room', 'r', '--text', 't', '--timeout', '0'], "'--timeout <ms>' argument '0'", 'Give a number of milliseconds from 1 to '],
    [['classify', '--top', '0', 'x.jpg'], "'--top <n>' argument '0'", 'Give a whole number, 1 or more.'],
    [['probe', '--timeout', 'soon'], "'--timeout <ms>' argument 'soon'", 'Give a number of milliseconds from 1 to '],
    [['servers', '--timeout', '50'], "'--timeout <ms>' argument '50'", 'Give a number of milliseconds from 100 to '],
  ];

  test.each(cases)('roomcast %j', async (args, what, advice) => {
    const run = await roomcast(...args);
    const [first, ...rest] = run.stderr.split('\n');
    expect(first).toContain(`error: option ${what} is invalid. ${advice}`);
    // The message and commander's pointer to --help; nothing else (no stack, no Node internals).
    expect(rest).toEqual(['(run with --help for usage)', '']);
    expect(run.stderr).not.toMatch(/options\.port|Received|ERR_|RangeError|    at /);
    expect(run.stdout).toBe('');
    expect(run.status).toBe(2);
  });
});

/** Option placeholders that stand for a number. */
const NUMERIC = /<(n|port|bytes|ms|seconds|lines)>/;

function everyOption(program: Command): [string, Option][] {
  return program.commands.flatMap((cmd) => cmd.options.map((o) => [`${cmd.name()} ${o.long}`, o] as [string, Option]));
}

test('every numeric option of every subcommand goes through the validator, also at its edges', () => {
  const numeric = everyOption(buildProgram()).filter(([, o]) => NUMERIC.test(o.flags));
  expect(numeric.length).toBeGreaterThan(20);
  const bad = ['', 'abc', '-1', '1e3', '0x10', ' 5', 'Infinity', 'NaN', '99999999999999999999999'];
  for (const [name, o] of numeric) {
    expect([name, typeof o.parseArg]).toEqual([name, 'function']);
    const parse = (v: string): unknown => o.parseArg!(v, undefined);
    for (const v of bad) {
      let thrown: unknown = null;
      try {
        parse(v);
      } catch (err) {
        thrown = err;
      }
      expect([name, v, thrown instanceof InvalidArgumentError]).toEqual([name, v, true]);
    }
  }
  const serve = Object.fromEntries(numeric.filter(([n]) => n.startsWith('serve ')).map(([n, o]) => [n.slice(6), o.parseArg!]));
  expect(serve['--port']('0', undefined)).toBe(0);
  expect(serve['--port']('65535', undefined)).toBe(65535);
  expect(() => serve['--port']('65536', undefined)).toThrow(InvalidArgumentError);
  expect(serve['--flood-rate']('0.5', undefined)).toBe(0.5);
  expect(serve['--register-timeout']('2147483', undefined)).toBe(2147483);
  expect(() => serve['--register-timeout']('2147484', undefined)).toThrow(/from 0 to 2147483/);
  expect(() => serve['--greet-delay'](String(MAX_TIMER_MS + 1), undefined)).toThrow(/milliseconds from 0 to 2147483647/);
});

test('help shows each default once, and none as "[]"', () => {
  const help = new Help();
  for (const [name, o] of everyOption(buildProgram())) {
    const text = help.optionDescription(o);
    expect([name, text.split('(default:').length - 1 <= 1]).toEqual([name, true]);
    expect([name, text]).not.toEqual([name, expect.stringContaining('(default: [])')]);
  }
});

test('serve --help reads as a person wrote it (the --host default once, no "[]")', async () => {
  const run = await roomcast('serve', '--help');
  expect(run.status).toBe(0);
  const flat = run.stdout.replace(/\s+/g, ' ');
  expect(flat).toContain('(default: localhost, i.e. 127.0.0.1 and ::1) --announce');
  expect(flat).not.toContain('(default: [])');
});
