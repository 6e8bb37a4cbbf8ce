// What the browser tests share: their environment (set by e2e/run.sh),
// Chromium started headless with the no-network flags (DEVELOPERS.md) plus
// each file's own, and the page's chat steps: sign in, ask, wait for the
// job's status, watch the download's progress bar.

import { mkdtempSync, readFileSync, rmSync, mkdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chromium } from 'playwright-core';
import assert from 'node:assert/strict';

/** A variable e2e/run.sh sets; missing, the test cannot run. */
export function env(name) {
  const v = process.env[name];
  if (v === undefined || v === '') throw new Error(`${name} is not set: run e2e/run.sh`);
  return v;
}

export const url = env('E2E_URL');
export const message = env('E2E_MESSAGE');
export const maxNewTokens = Number(env('E2E_MAX_NEW_TOKENS'));
/** `icllm generate`'s greedy answer to `message` through the canisters. */
export const expected = readFileSync(env('E2E_EXPECTED'), 'utf8');
export const modelDir = env('E2E_MODEL_DIR');
export const shots = env('E2E_SCREENSHOTS');
export const manifest = JSON.parse(readFileSync(join(modelDir, 'manifest.json'), 'utf8'));
/** Bytes of every file local mode downloads, and the stages' chunks. */
export const modelBytes = manifest.tokenizer.size + manifest.stages.reduce((n, s) => n + s.size, 0);
export const chunks = manifest.stages.reduce((n, s) => n + s.chunks.length, 0);

/** Flags every run takes: headless, nothing fetched from the network. */
const BASE_FLAGS = [
  '--headless=new',
  '--no-sandbox',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
];

/** WebGPU on SwiftShader (Chromium's CPU Vulkan) where there is no GPU. */
export const WEBGPU_FLAGS = ['--enable-unsafe-webgpu', '--enable-features=Vulkan', '--use-webgpu-adapter=swiftshader'];
/** No WebGPU at all. */
export const NO_WEBGPU_FLAGS = ['--disable-features=WebGPU', '--disable-gpu'];

/** Starts Chromium (fresh profile) with `flags` on the served page;
 *  `close()` ends it and removes the profile. */
export async function openBrowser(flags) {
  mkdirSync(shots, { recursive: true });
  const userDataDir = mkdtempSync(join(tmpdir(), 'icllm-e2e-chromium-'));
  const context = await chromium.launchPersistentContext(userDataDir, {
    executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
    headless: false, // the flag in BASE_FLAGS: Chromium's own headless mode
    args: [...BASE_FLAGS, ...flags],
    viewport: { width: 1100, height: 800 },
  });
  const page = context.pages()[0] ?? (await context.newPage());
  page.on('console', (m) => {
    if (m.type() === 'error') console.error(`[page] ${m.text()}`);
  });
  await page.goto(url);
  return {
    context,
    page,
    close: async () => {
      await context.close();
      rmSync(userDataDir, { recursive: true, force: true });
    },
  };
}

export async function screenshot(page, name) {
  await page.screenshot({ path: join(shots, name) });
}

/** The job status line's word (running, completed, cancelled, …). */
export const status = (page) => page.locator('#job-status').getAttribute('data-status');

/** Waits until the status is one of `words`; returns it. */
export async function waitForStatus(page, words, timeout = 180_000) {
  await page.waitForFunction(
    (w) => w.includes(document.getElementById('job-status').dataset.status),
    words,
    { timeout, polling: 50 },
  );
  return status(page);
}

/** Types a question with its settings (temperature 0: greedy) and sends it. */
export async function ask(page, text, newTokens) {
  await page.fill('#max-new-tokens', String(newTokens));
  await page.fill('#temperature', '0');
  await page.fill('#prompt', text);
  await page.click('#send');
}

/** The task manager's upper bound of a one-message chat request's tokens
 *  (canisters/task_manager/impl/src/model/jobs.rs: prompt_bound + max_new_tokens). */
export function reservation(content, newTokens) {
  const bytes = Buffer.byteLength('user') + Buffer.byteLength(content);
  return bytes + 2 + 8 + Buffer.byteLength(manifest.chat_template) + newTokens;
}

/** Records every text the assistant's last answer shows on its way, in
 *  `window.__seen`. */
export async function watchAnswer(page) {
  await page.evaluate(() => {
    window.__seen = [];
    new MutationObserver(() => {
      const t = document.querySelector('.message.assistant:last-child .text');
      if (t) window.__seen.push(t.textContent);
    }).observe(document.getElementById('conversation'), { childList: true, subtree: true, characterData: true });
  });
}

/** The non-empty texts `watchAnswer` saw, each checked to extend the last. */
export async function seenTexts(page) {
  const seen = await page.evaluate(() => window.__seen.filter((t) => t.length > 0));
  for (let i = 1; i < seen.length; i++) assert.ok(seen[i].startsWith(seen[i - 1]), `step ${i} rewrote the text`);
  return seen;
}

/** Records every text the progress line shows, and the bar's values, in
 *  `window.__progress`. */
export async function watchProgress(page) {
  await page.evaluate(() => {
    window.__progress = [];
    const bar = document.getElementById('local-progress-bar');
    new MutationObserver(() => {
      window.__progress.push({
        text: document.getElementById('local-progress-text').textContent,
        value: bar.value,
        max: bar.max,
        visible: !document.getElementById('local-progress').hidden,
      });
    }).observe(document.getElementById('local-progress'), {
      subtree: true,
      childList: true,
      characterData: true,
      attributes: true,
    });
  });
}

/** The progress states that were shown. */
export async function shownProgress(page) {
  return (await page.evaluate(() => window.__progress)).filter((p) => p.visible);
}

/** Signs in (a fresh device key, registered; or the key this browser
 *  keeps, after a reload) and waits for the deployed model. */
export async function signIn(page, { fresh }) {
  if (fresh) {
    await page.click('#sign-in-device');
    await page.waitForSelector('#register:not([hidden])');
    await page.click('#register');
  }
  await page.waitForSelector('#signed-in:not([hidden])');
  await page.waitForFunction(() => /tokens available/.test(document.getElementById('tokens').textContent));
  await page.waitForFunction((m) => document.getElementById('model').value === m, manifest.name);
}

/** Signs in and turns "Run on this device" on. */
export async function signInLocal(page, { fresh }) {
  await signIn(page, { fresh });
  await page.waitForSelector('#local-mode:not([disabled])');
  await page.check('#local-mode');
}

/** Asks the test's question greedily on this device; returns the answer. */
export async function askLocally(page) {
  await watchProgress(page);
  await ask(page, message, maxNewTokens);
  const final = await waitForStatus(page, ['completed', 'cancelled', 'failed', 'error']);
  const error = (await page.isVisible('#error')) ? await page.textContent('#error') : '';
  assert.equal(final, 'completed', error);
  return page.textContent('.message.assistant:last-child .text');
}

/** Whether the page's browser gives a WebGPU adapter: 'absent' (no
 *  navigator.gpu), 'no adapter', or the adapter's description. */
export async function webGpuAdapter(page) {
  return page.evaluate(async () => {
    if (!('gpu' in navigator) || !navigator.gpu) return 'absent';
    const adapter = await navigator.gpu.requestAdapter();
    if (adapter === null) return 'no adapter';
    const info = adapter.info ?? {};
    return `adapter: ${[info.vendor, info.architecture, info.device, info.description].filter(Boolean).join(' ') || 'unnamed'}`;
  });
}
