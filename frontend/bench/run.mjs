// The browser benchmark: onnxruntime-web with its WebGPU and wasm
// execution providers, on the same ONNX decoder as the engine, and the
// project's browser paths on the model's stages-1: the CPU one
// (frontend/engine_web: the tract engine for wasm32 + SIMD, "engine-web")
// and the WebGPU one (frontend/gpu: the WGSL forward pass, "wgsl"), in
// headless Chromium (Debian's `chromium`, driven by playwright-core). Prints decode
// and prefill tokens/s per execution provider, and whether the greedy
// tokens agree with the model's reference fixtures (onnxruntime, native).
//
//   node run.mjs [--model tiny-llama|smollm2-135m-instruct]... [--decode 32] [--eps webgpu,wasm,engine-web,wgsl]
//                [--timeout SECONDS per run, 600]
//
// Serves this page, onnxruntime-web's files and the repository's models/
// on 127.0.0.1 (cross-origin isolated, so the wasm provider may use
// threads), and prints one JSON line per run after the table.
import http from 'node:http';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';

const here = path.dirname(fileURLToPath(import.meta.url));
const repo = path.resolve(here, '../..');

function parseArgs(argv) {
  const args = { models: [], decode: 32, timeout: 600, eps: ['webgpu', 'wasm', 'engine-web', 'wgsl'], chromium: process.env.CHROMIUM ?? '/usr/bin/chromium' };
  for (let i = 0; i < argv.length; i++) {
    const value = () => {
      if (i + 1 >= argv.length) throw new Error(`${argv[i]} needs a value`);
      return argv[++i];
    };
    switch (argv[i]) {
      case '--model': args.models.push(value()); break;
      case '--decode': args.decode = Number(value()); break;
      case '--eps': args.eps = value().split(','); break;
      case '--chromium': args.chromium = value(); break;
      case '--timeout': args.timeout = Number(value()); break;
      default: throw new Error(`unknown argument ${argv[i]}`);
    }
  }
  if (args.models.length === 0) args.models = ['tiny-llama'];
  if (!Number.isInteger(args.decode) || args.decode < 2) throw new Error('--decode must be an integer ≥ 2');
  return args;
}

const TYPES = { '.html': 'text/html', '.js': 'text/javascript', '.mjs': 'text/javascript', '.wasm': 'application/wasm', '.json': 'application/json' };

// Maps a URL path to a file under one of the served roots, or null.
function resolve(urlPath) {
  const roots = [
    ['/ort/', path.join(here, 'node_modules/onnxruntime-web/dist')],
    // frontend/engine_web/build.sh builds it.
    ['/engine_web/', path.join(repo, 'frontend/engine_web/pkg')],
    // frontend/gpu/build.sh builds it.
    ['/gpu/', path.join(repo, 'frontend/gpu/pkg')],
    ['/models/', path.join(repo, 'models')],
    ['/', path.join(here, 'page')],
  ];
  const clean = decodeURIComponent(urlPath.split('?')[0]);
  for (const [prefix, root] of roots) {
    if (!clean.startsWith(prefix)) continue;
    const rel = clean.slice(prefix.length) || 'index.html';
    const file = path.resolve(root, rel);
    if (file !== root && !file.startsWith(root + path.sep)) return null;
    return file;
  }
  return null;
}

function serve() {
  const server = http.createServer((req, res) => {
    const file = resolve(req.url);
    let stat = null;
    try { stat = file && fs.statSync(file); } catch { stat = null; }
    if (!stat || !stat.isFile()) {
      res.writeHead(404).end('not found');
      return;
    }
    res.writeHead(200, {
      'content-type': TYPES[path.extname(file)] ?? 'application/octet-stream',
      'content-length': stat.size,
      'cross-origin-opener-policy': 'same-origin',
      'cross-origin-embedder-policy': 'require-corp',
      'cache-control': 'no-store',
    });
    fs.createReadStream(file).pipe(res);
  });
  return new Promise((ok) => server.listen(0, '127.0.0.1', () => ok(server)));
}

// The model's unsplit ONNX, its shapes, and the first chat fixture (the
// prompt's ids and the reference greedy tokens).
function modelCase(name) {
  const dir = path.join(repo, 'models', name);
  const onnx = path.join(dir, 'source/model.onnx');
  if (!fs.existsSync(onnx)) {
    throw new Error(`${onnx} is missing` + (name.startsWith('smollm2') ? ': run scripts/prepare_smollm2.sh' : ''));
  }
  const config = JSON.parse(fs.readFileSync(path.join(dir, 'source/config.json'), 'utf8'));
  const fixtures = JSON.parse(fs.readFileSync(path.join(dir, 'fixtures.json'), 'utf8'));
  const fixture = fixtures.cases.find((c) => c.kind === 'chat') ?? fixtures.cases[0];
  const heads = config.num_attention_heads;
  return {
    name,
    model: `/models/${name}/source/model.onnx`,
    ids: fixture.input_ids,
    reference: fixture.greedy_ids ?? [],
    kvHeads: config.num_key_value_heads ?? heads,
    headDim: config.head_dim ?? config.hidden_size / heads,
  };
}

function agreement(tokens, reference) {
  const n = Math.min(tokens.length, reference.length);
  let same = 0;
  while (same < n && tokens[same] === reference[same]) same++;
  return `${same}/${n}`;
}

async function main() {
  const args = parseArgs(process.argv.slice(2));
  const cases = args.models.map(modelCase);
  const server = await serve();
  const url = `http://127.0.0.1:${server.address().port}/`;
  const profile = fs.mkdtempSync(path.join(os.tmpdir(), 'icllm-bench-chromium-'));
  const context = await chromium.launchPersistentContext(profile, {
    executablePath: args.chromium,
    headless: true,
    args: [
      '--headless=new', '--no-sandbox', '--disable-quic', '--no-first-run',
      '--disable-background-networking', '--disable-component-update', '--disable-sync',
      '--enable-unsafe-webgpu', '--enable-features=Vulkan', '--use-webgpu-adapter=swiftshader',
    ],
  });
  const results = [];
  try {
    // A fresh page per run: a run that crashes its renderer (out of
    // memory) or hangs leaves the next one a clean start.
    const open = async () => {
      const page = await context.newPage();
      page.on('console', (m) => { if (m.type() === 'error') console.error(`[page] ${m.text()}`); });
      page.on('crash', () => console.error('[page] the renderer crashed'));
      await page.goto(url);
      await page.waitForFunction(
        ([engine, wgsl]) =>
          typeof window.ortBench === 'function' &&
          (!engine || typeof window.engineBench === 'function') &&
          (!wgsl || typeof window.gpuBench === 'function'),
        [args.eps.includes('engine-web'), args.eps.includes('wgsl')],
      );
      return page;
    };
    const first = await open();
    const adapter = await first.evaluate(() => window.webgpuAdapter());
    await first.close();
    console.log(`chromium ${context.browser()?.version() ?? ''}; WebGPU adapter: ${adapter ? JSON.stringify(adapter) : 'none'}`);
    for (const c of cases) {
      for (const ep of args.eps) {
        const page = await open();
        let timer;
        try {
          const timeout = new Promise((_, fail) => {
            timer = setTimeout(() => fail(new Error(`no result within ${args.timeout} s`)), args.timeout * 1000);
          });
          const own = { name: c.name, ids: c.ids, decode: args.decode };
          const r = await Promise.race([
            ep === 'engine-web'
              ? page.evaluate((a) => window.engineBench(a), own)
              : ep === 'wgsl'
                ? page.evaluate((a) => window.gpuBench(a), own)
                : page.evaluate((a) => window.ortBench(a), { ...c, ep, decode: args.decode }),
            timeout,
          ]);
          results.push({ model: c.name, ...r, agree: agreement(r.tokens, c.reference) });
        } catch (e) {
          results.push({ model: c.name, ep, error: String(e.message ?? e).split('\n')[0] });
        } finally {
          clearTimeout(timer);
          await page.close().catch(() => {});
        }
      }
    }
  } finally {
    await context.close();
    server.close();
    fs.rmSync(profile, { recursive: true, force: true });
  }
  console.log('\n| model | runtime | prefill tok/s | decode tok/s | load s | greedy tokens = fixtures |');
  console.log('|---|---|---|---|---|---|');
  for (const r of results) {
    if (r.error) {
      console.log(`| ${r.model} | ${r.ep} | failed: ${r.error} | | | |`);
      continue;
    }
    const rate = (tokens, ms) => Number((tokens / (ms / 1000)).toPrecision(3));
    const pre = rate(r.prefillTokens, r.prefillMs);
    const dec = rate(r.decodeTokens, r.decodeMs);
    const runtime =
      r.ep === 'engine-web'
        ? 'engine_web (tract, wasm32 + SIMD, 1 thread)'
        : r.ep === 'wgsl'
          ? 'frontend/gpu (WGSL, WebGPU)'
          : `onnxruntime-web ${r.ep}${r.ep === 'wasm' ? ` (${r.threads} threads)` : ''}`;
    console.log(`| ${r.model} | ${runtime} | ${pre} | ${dec} | ${(r.loadMs / 1000).toFixed(1)} | ${r.agree} |`);
  }
  for (const r of results) console.log(JSON.stringify({ ...r, tokens: undefined }));
  if (results.some((r) => r.error)) process.exitCode = 1;
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
