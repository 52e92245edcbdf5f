/**
 * A second process for the SQLite store's tests, running the built store (dist/):
 *
 *   node store-child.mjs try DIR          open the store, print {"ok":true} or {"code","message"}, close
 *   node store-child.mjs hold DIR         open it, print "ready", close when stdin ends
 *   node store-child.mjs append DIR FSYNC COUNT PER_TURN PAUSE_MS
 *                                         append COUNT messages to room "crash", PER_TURN a turn
 *                                         and PAUSE_MS between turns (0: the next turn),
 *                                         printing "durable SEQ" as each batch is reported durable;
 *                                         "done" at the end, then wait (to be killed)
 */
import { SqliteStore } from '../../dist/store/sqlite-store.js';

const [mode, dir, fsync = 'always', countArg = '10000', perTurnArg = '10', pauseArg = '0'] = process.argv.slice(2);

if (mode === 'try') {
  const store = new SqliteStore({ dir, fsync: 'always' });
  try {
    await store.open();
    await store.close();
    console.log(JSON.stringify({ ok: true }));
  } catch (err) {
    console.log(JSON.stringify({ code: err.code, message: err.message }));
  }
} else if (mode === 'hold') {
  const store = new SqliteStore({ dir, fsync: 'always' });
  await store.open();
  console.log('ready');
  process.stdin.resume();
  process.stdin.on('end', async () => {
    await store.close();
    process.exit(0);
  });
} else if (mode === 'append') {
  const store = new SqliteStore({
    dir,
    fsync,
    observer: { durable: (_room, seq) => process.stdout.write(`durable ${seq}\n`) },
  });
  await store.open();
  const count = Number(countArg);
  const perTurn = Number(perTurnArg);
  const pause = Number(pauseArg);
  let seq = 0;
  const next = () => {
    for (let i = 0; i < perTurn && seq < count; i++) {
      seq++;
      store.append({ type: 'message', room: 'crash', seq, nick: 'child', text: `m${seq} ${'x'.repeat(seq % 200)}`, time: 1_000_000 + seq });
    }
    if (seq < count) {
      if (pause > 0) setTimeout(next, pause);
      else setImmediate(next);
    }
    else store.flush().then(() => process.stdout.write('done\n'));
  };
  next();
  setInterval(() => {}, 60_000); // stays until killed
} else {
  console.error(`unknown mode ${mode}`);
  process.exit(2);
}
