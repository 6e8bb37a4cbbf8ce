// The contract between the chat UI and a local backend: the model run on
// this device (WebGPU, or the CPU when there is none), its weights fetched
// chunk by chunk from the task manager.
//
// Both implementations are a ./worker_backend.ts: the page downloads and
// checks the weights (./download.ts, ./store.ts) and a Web Worker runs the
// engine: ./cpu.worker.ts the tract engine of `frontend/engine_web`,
// ./gpu.worker.ts the WGSL forward pass of `frontend/gpu` (wasm-bindgen
// packages built to their `pkg/`, found at build time: see ./index.ts).

/** A model's files, as the task manager serves them to anyone registered. */
export interface ChunkSource {
  /** The model's name in the registry. */
  readonly model: string;
  /** The bytes of `manifest.json` (chunk lists and SHA-256 of every file). */
  manifest(): Promise<Uint8Array>;
  /** Chunk `index` of stage `stage`'s ONNX file. */
  stageChunk(stage: number, index: number): Promise<Uint8Array>;
  /** Chunk `index` of `tokenizer.json` (cut into `chunk_size` pieces). */
  tokenizerChunk(index: number): Promise<Uint8Array>;
}

/** How far a download has got. */
export interface LoadProgress {
  loadedBytes: number;
  totalBytes: number;
  /** What is being done, in words ("stage 0, chunk 3 of 12", "from the cache"). */
  phase: string;
  /** Set when the weights cannot be saved on this device (full quota), in words. */
  notice?: string;
}

/** Sampling, as the canisters take it (temperature 0: greedy). */
export interface LocalSettings {
  maxNewTokens: number;
  temperature: number;
  topP: number;
  /** 32 bytes; absent: random. */
  seed?: Uint8Array;
}

export interface ChatTurn {
  role: 'system' | 'user' | 'assistant';
  content: string;
}

/** What a finished generation reports. */
export interface LocalGeneration {
  text: string;
  promptTokens: number;
  generatedTokens: number;
  /** Decode speed, generated tokens per second. */
  tokensPerSecond: number;
  /** Prompt tokens per second of the first step (the prompt and the first token). */
  prefillTokensPerSecond?: number;
  finishReason: 'eos' | 'max-new-tokens' | 'context-full' | 'stop-sequence' | 'cancelled';
}

export interface LocalBackend {
  /** Which backend runs: "WebGPU" or "CPU (wasm)". */
  readonly backendName: string;
  /** Downloads (or finds in the cache), verifies and loads the model. */
  loadModel(source: ChunkSource, onProgress: (p: LoadProgress) => void): Promise<void>;
  /** Generates from a chat, calling `onToken` with each new piece of text;
   *  aborting `signal` stops it (finishReason "cancelled"). */
  generate(
    prompt: ChatTurn[],
    settings: LocalSettings,
    onToken: (text: string) => void,
    signal: AbortSignal,
  ): Promise<LocalGeneration>;
}
