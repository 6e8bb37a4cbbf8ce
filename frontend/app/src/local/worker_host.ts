// The worker side shared by the local backends' workers (cpu.worker.ts,
// gpu.worker.ts): messages handled one at a time in order, except
// `cancel`, which must not wait behind the generation it stops; errors
// posted back in words; the speeds a finished generation reports.

import type { LocalGeneration } from './backend';
import type { FromWorker, ToWorker } from './protocol';

interface WorkerScope {
  postMessage(message: FromWorker, transfer?: Transferable[]): void;
  onmessage: ((event: MessageEvent<ToWorker>) => void) | null;
}
const scope = self as unknown as WorkerScope;

export const post = (m: FromWorker): void => scope.postMessage(m);

export function errorMessage(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

/** Serves the page's messages with `handle`; the ids of cancelled
 *  generations go into `cancelled` as soon as their message arrives. */
export function serve(handle: (m: ToWorker) => Promise<void>, cancelled: Set<number>): void {
  let queue: Promise<void> = Promise.resolve();
  scope.onmessage = (event) => {
    const m = event.data;
    if (m.type === 'cancel') {
      cancelled.add(m.id);
      return;
    }
    queue = queue.then(() =>
      handle(m).catch((err) => post({ type: 'error', id: m.type === 'generate' ? m.id : null, message: errorMessage(err) })),
    );
  };
}

/** A wasm model loader (frontend/gpu's or frontend/engine_web's): the
 *  pieces in order, each checked by the engine as it arrives. */
export interface ChunkLoader {
  addTokenizerChunk(index: number, bytes: Uint8Array): void;
  addStageChunk(stage: number, index: number, bytes: Uint8Array): void;
  free(): void;
}

/** The model being assembled from the page's pieces. Its first error is
 *  kept and later pieces are ignored; `take` hands the loader over for its
 *  `finish`, or throws that error. */
export class ModelAssembly<L extends ChunkLoader> {
  private loader: L | null = null;
  private error: string | null = null;

  /** Starts over with `loader` (a previous unfinished one is freed). */
  start(loader: L): void {
    this.loader?.free();
    this.loader = loader;
    this.error = null;
  }

  add(m: Extract<ToWorker, { type: 'tokenizer-chunk' | 'stage-chunk' }>): void {
    if (this.error || !this.loader) return;
    try {
      if (m.type === 'tokenizer-chunk') this.loader.addTokenizerChunk(m.index, m.bytes);
      else this.loader.addStageChunk(m.stage, m.index, m.bytes);
    } catch (err) {
      this.error = errorMessage(err);
    }
  }

  take(): L {
    const loader = this.loader;
    if (this.error || !loader) throw new Error(this.error ?? 'No model is being loaded.');
    this.loader = null;
    return loader;
  }
}

/** Times of a generation (performance.now()): its start, its first token
 *  (the prompt and the first token), its end. */
export interface Timing {
  started: number;
  firstAt: number;
  ended: number;
}

/** The result the page shows: decode speed over the tokens after the
 *  first (which came with the prompt), prefill speed over the first step. */
export function generationResult(
  run: { text: string; promptTokens: number; generatedTokens: number; finishReason: string | undefined },
  t: Timing,
): LocalGeneration {
  const generated = run.generatedTokens;
  const decodeSeconds = (t.ended - t.firstAt) / 1000;
  const tokensPerSecond =
    generated > 1 && decodeSeconds > 0 ? (generated - 1) / decodeSeconds : generated / Math.max(1e-9, (t.ended - t.started) / 1000);
  const prefillSeconds = (t.firstAt - t.started) / 1000;
  return {
    text: run.text,
    promptTokens: run.promptTokens,
    generatedTokens: generated,
    tokensPerSecond,
    prefillTokensPerSecond: generated > 0 && prefillSeconds > 0 ? run.promptTokens / prefillSeconds : 0,
    finishReason: (run.finishReason ?? 'cancelled') as LocalGeneration['finishReason'],
  };
}
