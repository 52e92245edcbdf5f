import { defaultDataDir } from '../../src/store/data-dir.js';

describe('defaultDataDir', () => {
  test('$XDG_STATE_HOME/roomcast when it is set to an absolute path', () => {
    expect(defaultDataDir({ XDG_STATE_HOME: '/var/lib/me/state' }, '/home/ann')).toBe('/var/lib/me/state/roomcast');
    expect(defaultDataDir({ XDG_STATE_HOME: '/srv/state/' }, '/home/ann')).toBe('/srv/state/roomcast');
  });

  test('~/.local/state/roomcast when it is unset, empty or relative (the specification says to ignore it then)', () => {
    expect(defaultDataDir({}, '/home/ann')).toBe('/home/ann/.local/state/roomcast');
    expect(defaultDataDir({ XDG_STATE_HOME: '' }, '/home/ann')).toBe('/home/ann/.local/state/roomcast');
    expect(defaultDataDir({ XDG_STATE_HOME: 'state' }, '/root')).toBe('/root/.local/state/roomcast');
  });

  test('reads nothing but what it is given', () => {
    const env = { HOME: '/elsewhere', XDG_DATA_HOME: '/data', XDG_CONFIG_HOME: '/config' };
    expect(defaultDataDir(env, '/home/bob')).toBe('/home/bob/.local/state/roomcast');
  });
});
