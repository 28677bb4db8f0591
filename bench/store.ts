// Job store figures: recording 10,000 jobs and listing 100,000, against bare better-sqlite3.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import Database from 'better-sqlite3';
import { listingText } from '../src/cli/commands/ls.js';
import { PLAIN } from '../src/cli/format.js';
import { JobStore, type NewJob } from '../src/store/jobstore.js';
import { bestOf, time, type Figure } from './measure.js';

const jobs = (n: number, tag: string): NewJob[] => Array.from({ length: n }, (_v, i) => ({
  id: `fit_${tag}_${i}_AbCdEfGhIjKlMnOpQrStUvWxYz0123456789abcdefg_12345678`,
  name: `fit_${tag}`,
  hash: `hash${tag}${i}`,
  stageDir: `/home/user/project/_expyre/run_fit_${tag}_${i}`,
}));

function bareInsert(file: string, rows: NewJob[]): void {
  const db = new Database(file);
  db.pragma('journal_mode = WAL');
  db.exec('CREATE TABLE IF NOT EXISTS jobs (id TEXT PRIMARY KEY, name TEXT, hash TEXT, status TEXT, stage_dir TEXT)');
  const st = db.prepare('INSERT INTO jobs VALUES (?, ?, ?, ?, ?)');
  db.transaction(() => { for (const r of rows) st.run(r.id, r.name, r.hash, 'created', r.stageDir); })();
  db.close();
}

export async function benchStore(): Promise<Figure[]> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'xpr-bench-store-'));
  try {
    let round = 0;
    const record = await bestOf(3, () => {
      const store = JobStore.open(path.join(dir, `rec${round}.db`));
      store.insertMany(jobs(10_000, `r${round++}`));
      store.close();
    });
    let bareRound = 0;
    const recordBare = await bestOf(3, () => bareInsert(path.join(dir, `bare${bareRound}.db`), jobs(10_000, `b${bareRound++}`)));

    const big = JobStore.open(path.join(dir, 'big.db'));
    for (let i = 0; i < 10; i++) big.insertMany(jobs(10_000, `big${i}`));
    big.close();
    bareInsert(path.join(dir, 'bigbare.db'), Array.from({ length: 10 }, (_v, i) => jobs(10_000, `big${i}`)).flat());
    const list = await bestOf(3, () => {
      const store = JobStore.open(path.join(dir, 'big.db'), { readonly: true });
      const n = store.list().length;
      store.close();
      if (n !== 100_000) throw new Error(`listed ${n}`);
    });
    const listBare = await bestOf(3, () => {
      const db = new Database(path.join(dir, 'bigbare.db'), { readonly: true });
      db.prepare('SELECT * FROM jobs').all();
      db.close();
    });
    const asLs = await bestOf(3, () => {
      const file = path.join(dir, 'big.db');
      const store = JobStore.open(file, { readonly: true });
      const n = listingText(store, file, {}, false, PLAIN).split('\n').length - 2;
      store.close();
      if (n !== 100_000) throw new Error(`listed ${n}`);
    });
    const filtered = await time(() => {
      const store = JobStore.open(path.join(dir, 'big.db'), { readonly: true });
      store.list({ name: ['fit_big3'], status: ['created'] });
      store.close();
    });
    return [
      { name: 'record 10,000 jobs', xprMs: record, baselineMs: recordBare, target: '< 1000 ms', ok: record < 1000 },
      { name: 'list 100,000 jobs, full records', xprMs: list, baselineMs: listBare, note: 'JobStore.list' },
      { name: 'list 100,000 jobs, as xpr ls reads', xprMs: asLs, baselineMs: listBare, target: '< 500 ms', ok: asLs < 500,
        note: 'the text of xpr ls, from an open store' },
      { name: 'list 100,000, -n regexp + -s', xprMs: filtered, baselineMs: listBare, target: '< 500 ms', ok: filtered < 500 },
    ];
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}
