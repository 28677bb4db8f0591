// The dashboard in a real browser: Debian's headless Chromium opens /ui?token=…, is let in by the
// cookie that sets, and shows every stage queue and a task finished through the lease API.
import fs from 'node:fs';
import { Queue } from 'bullmq';
import puppeteer, { type Browser, type Page } from 'puppeteer-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BULL_PREFIX, queueName } from '../../src/executor/keys.js';
import type { TaskData } from '../../src/executor/types.js';
import { startHarness, STAGES, TOKEN, WORKFLOW, type Harness } from './gateway-harness.js';
import { skipWithoutRedis } from './redis.js';

const CHROMIUM = '/usr/bin/chromium';

/** Skips (one line) without Chromium, except in CI where it is part of the test machine. */
function skipWithoutChromium(): boolean {
  try {
    fs.accessSync(CHROMIUM, fs.constants.X_OK);
    return false;
  } catch {
    if (process.env.CI === 'true') throw new Error(`The dashboard test must run in CI, but ${CHROMIUM} is not installed (Debian package chromium)`);
    console.warn(`skipping the dashboard test: ${CHROMIUM} is not installed (Debian package chromium)`);
    return true;
  }
}

const skip = skipWithoutRedis('the dashboard test') || skipWithoutChromium();

describe.skipIf(skip)('dashboard', () => {
  let h: Harness;
  let browser: Browser;
  let taskId: string;

  beforeAll(async () => {
    h = await startHarness();
    // One task through the split stage's queue, finished by a remote worker over the lease API.
    const queue = new Queue(queueName('split'), { connection: { host: '127.0.0.1', port: h.redis.port, password: h.redis.password }, prefix: BULL_PREFIX });
    taskId = '5'.repeat(64);
    const data: TaskData = {
      workflow: WORKFLOW.name, stage: 'split', stageIndex: 0, codeHash: WORKFLOW.codeHash,
      input: 'a b c', submissionInput: 'a b c', sharedKey: '6'.repeat(64),
    };
    await queue.add('split', data, { jobId: taskId });
    await queue.close();
    const post = (path: string, body: unknown) => fetch(`${h.url}${path}`, {
      method: 'POST', headers: { authorization: `Bearer ${TOKEN}`, 'content-type': 'application/json' }, body: JSON.stringify(body),
    });
    const lease = (await (await post('/api/v1/workers/lease', { stage: 'split', workerId: 'browser-test' })).json()) as { taskId: string; leaseToken: string };
    expect(lease.taskId).toBe(taskId);
    const done = await post('/api/v1/workers/complete', { stage: 'split', taskId, leaseToken: lease.leaseToken, outcome: { value: ['a', 'b', 'c'], readInput: false } });
    expect(done.status).toBe(200);

    const root = process.getuid?.() === 0;
    browser = await puppeteer.launch({
      executablePath: CHROMIUM,
      headless: true,
      args: [...(root ? ['--no-sandbox'] : []), '--disable-gpu', '--disable-dev-shm-usage'],
    });
  });
  afterAll(async () => {
    await browser?.close();
    await h?.close();
  });

  // Expressions as text: they run in the page, whose DOM types this Node project does not load.
  const pageText = (page: Page) => page.evaluate('document.body.innerText') as Promise<string>;
  const waitForText = (page: Page, text: string) =>
    page.waitForFunction(`document.body && document.body.innerText.includes(${JSON.stringify(text)})`, { timeout: 30_000 });

  it('opens with ?token=, keeps the token out of the address, and shows every stage queue', async () => {
    const page = await browser.newPage();
    const response = await page.goto(`${h.url}/ui?token=${encodeURIComponent(TOKEN)}`, { waitUntil: 'networkidle0' });
    expect(response?.status()).toBe(200);
    expect(page.url()).toBe(`${h.url}/ui`);
    for (const stage of STAGES) await waitForText(page, queueName(stage));
    const cookies = await page.browser().cookies();
    const cookie = cookies.find((c) => c.name === 'xpr_executor_token');
    expect(cookie).toMatchObject({ httpOnly: true, sameSite: 'Strict' });
    await page.close();
  });

  it("shows the finished task in its queue's completed jobs", async () => {
    const page = await browser.newPage();
    await page.goto(`${h.url}/ui?token=${encodeURIComponent(TOKEN)}`, { waitUntil: 'networkidle0' });
    await page.goto(`${h.url}/ui/queue/${queueName('split')}?status=completed`, { waitUntil: 'networkidle0' });
    await waitForText(page, `#${taskId}`);
    const text = await pageText(page);
    expect(text).toContain(queueName('split'));
    expect(text).toMatch(/COMPLETED\s*1\b/i);
    expect(text).toContain('by xpr-gateway-leases');
    await page.close();
  });

  it('a browser without the token is refused', async () => {
    const context = await browser.createBrowserContext();
    const page = await context.newPage();
    const response = await page.goto(`${h.url}/ui`);
    expect(response?.status()).toBe(401);
    await context.close();
  });
});
