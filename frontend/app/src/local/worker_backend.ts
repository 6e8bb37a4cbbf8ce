// A local backend whose engine runs in a Web Worker (the protocol of
// ./protocol.ts): the CPU path (./cpu.ts) and the WebGPU path (./gpu.ts).
// The page fetches the weights (ChunkSource, or the cache), checks them
// and sends them to the worker in order; the worker builds the model and
// generates, streaming tokens back.

import type { ChatTurn, ChunkSource, LoadProgress, LocalBackend, LocalGeneration, LocalSettings } from './backend';
import { downloadModel } from './download';
import type { FromWorker, ToWorker } from './protocol';
import { ChunkStore } from './store';

type Listener = (m: FromWorker) => void;

export class WorkerBackend implements LocalBackend {
  private listener: Listener | null = null;
  private nextId = 1;
  /** A worker that died (its script failed) answers nothing more. */
  private broken: string | null = null;

  /** `name`: what the page shows ("WebGPU", "CPU (wasm)"). */
  constructor(
    readonly backendName: string,
    private readonly worker: Worker,
  ) {
    this.worker.onmessage = (e: MessageEvent<FromWorker>) => this.listener?.(e.data);
    this.worker.onerror = (e) => {
      this.broken = `The ${backendName} engine stopped: ${e.message || 'its worker failed to start'}.`;
      this.listener?.({ type: 'error', id: null, message: this.broken });
    };
  }

  private send(m: ToWorker, transfer: Transferable[] = []): void {
    this.worker.postMessage(m, transfer);
  }

  /** Starts the worker's engine; resolves with what it runs on (the GPU
   *  adapter), rejects when it cannot start (no WebGPU device). */
  ready(): Promise<string> {
    if (this.broken) return Promise.reject(new Error(this.broken));
    return new Promise<string>((resolve, reject) => {
      this.listener = (m) => {
        if (m.type === 'ready') {
          this.listener = null;
          resolve(m.detail);
        } else if (m.type === 'error') {
          this.listener = null;
          reject(new Error(m.message));
        }
      };
      this.send({ type: 'init' });
    });
  }

  /** Ends the worker (a backend that will not be used). */
  terminate(): void {
    this.worker.terminate();
  }

  async loadModel(source: ChunkSource, onProgress: (p: LoadProgress) => void): Promise<void> {
    if (this.broken) throw new Error(this.broken);
    const store = await ChunkStore.open();
    const manifest = await source.manifest();
    let failed: string | null = null;
    let last: LoadProgress = { loadedBytes: 0, totalBytes: 1, phase: 'starting' };
    const progress = (p: LoadProgress) => {
      last = p;
      onProgress(p);
    };
    const loaded = new Promise<void>((resolve, reject) => {
      this.listener = (m) => {
        if (m.type === 'loaded') resolve();
        else if (m.type === 'error') {
          failed = m.message;
          reject(new Error(`The model could not be loaded on this device: ${m.message}`));
        } else if (m.type === 'progress') progress({ ...last, phase: m.phase, loadedBytes: last.totalBytes });
      };
    });
    loaded.catch(() => {});
    this.send({ type: 'load', manifest: manifest.slice() });
    await downloadModel(
      source,
      manifest,
      store,
      {
        tokenizerChunk: (index, bytes) => this.send({ type: 'tokenizer-chunk', index, bytes }, [bytes.buffer]),
        stageChunk: (stage, index, bytes) => {
          if (failed) throw new Error(failed);
          this.send({ type: 'stage-chunk', stage, index, bytes }, [bytes.buffer]);
        },
      },
      progress,
    );
    this.send({ type: 'finish' });
    try {
      await loaded;
    } finally {
      this.listener = null;
    }
  }

  generate(
    prompt: ChatTurn[],
    settings: LocalSettings,
    onToken: (text: string) => void,
    signal: AbortSignal,
  ): Promise<LocalGeneration> {
    if (this.broken) return Promise.reject(new Error(this.broken));
    const id = this.nextId++;
    return new Promise<LocalGeneration>((resolve, reject) => {
      const onAbort = () => this.send({ type: 'cancel', id });
      this.listener = (m) => {
        if (m.type === 'token' && m.id === id) onToken(m.text);
        else if (m.type === 'done' && m.id === id) {
          signal.removeEventListener('abort', onAbort);
          this.listener = null;
          resolve(m.result);
        } else if (m.type === 'error' && (m.id === id || m.id === null)) {
          signal.removeEventListener('abort', onAbort);
          this.listener = null;
          reject(new Error(m.message));
        }
      };
      signal.addEventListener('abort', onAbort);
      this.send({ type: 'generate', id, messages: prompt, settings });
      if (signal.aborted) onAbort();
    });
  }
}
