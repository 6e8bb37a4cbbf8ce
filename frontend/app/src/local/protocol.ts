// Messages between the page and a local backend's worker: the CPU path's
// (cpu.worker.ts, the tract engine) and the WebGPU path's (gpu.worker.ts,
// frontend/gpu's WGSL forward pass) speak the same protocol.
//
// Starting: `init`; the worker loads its engine (the GPU's opens its
// device) and answers `ready` or `error`. Loading: `load` (the manifest),
// then every piece in order (`tokenizer-chunk`, `stage-chunk`), then
// `finish`; the worker answers `progress` while the model loads, then
// `loaded` or `error`. Generating: `generate` with an id; the worker streams
// `token`s and ends with `done` or `error`; `cancel` with that id stops it
// before its next token.

import type { ChatTurn, LocalGeneration, LocalSettings } from './backend';

export type ToWorker =
  | { type: 'init' }
  | { type: 'load'; manifest: Uint8Array }
  | { type: 'tokenizer-chunk'; index: number; bytes: Uint8Array }
  | { type: 'stage-chunk'; stage: number; index: number; bytes: Uint8Array }
  | { type: 'finish' }
  | { type: 'generate'; id: number; messages: ChatTurn[]; settings: LocalSettings }
  | { type: 'cancel'; id: number };

export type FromWorker =
  | { type: 'ready'; detail: string }
  | { type: 'progress'; phase: string }
  | { type: 'loaded'; name: string }
  | { type: 'token'; id: number; text: string }
  | { type: 'done'; id: number; result: LocalGeneration }
  | { type: 'error'; id: number | null; message: string };

/** wasm-bindgen's init of a `--target web` package. */
type Init = (init?: { module_or_path: string | URL }) => Promise<unknown>;

/** The exports of frontend/engine_web/pkg/engine_web.js the CPU worker uses. */
export interface EngineWebModule {
  default: Init;
  WebModelLoader: new (manifest: Uint8Array) => {
    readonly name: string;
    addTokenizerChunk(index: number, bytes: Uint8Array): void;
    addStageChunk(stage: number, index: number, bytes: Uint8Array): void;
    finish(): EngineWebModel;
    free(): void;
  };
}

export interface EngineWebModel {
  readonly name: string;
  start(messages: string, maxNewTokens: number, temperature: number, topP: number, seed?: Uint8Array): EngineWebRun;
  free(): void;
}

export interface EngineWebRun {
  step(): string | undefined;
  cancel(): void;
  readonly finishReason: string | undefined;
  readonly text: string;
  readonly promptTokens: number;
  readonly generatedTokens: number;
  free(): void;
}

/** The exports of frontend/gpu/pkg/gpu.js the WebGPU worker uses. */
export interface GpuModule {
  default: Init;
  WebGpu: { open(): Promise<GpuDevice> };
  GpuModelLoader: new (manifest: Uint8Array) => {
    addTokenizerChunk(index: number, bytes: Uint8Array): void;
    addStageChunk(stage: number, index: number, bytes: Uint8Array): void;
    finish(gpu: GpuDevice, context?: number): GpuChatModel;
    free(): void;
  };
}

export interface GpuDevice {
  readonly adapter: string;
}

export interface GpuChatModel {
  readonly name: string;
  generate(
    messages: string,
    maxNewTokens: number,
    temperature: number,
    topP: number,
    seed: Uint8Array | undefined,
    onStep: (text: string, token: number) => boolean,
  ): Promise<GpuRun>;
  free(): void;
}

export interface GpuRun {
  readonly text: string;
  readonly promptTokens: number;
  readonly generatedTokens: number;
  readonly finishReason: string;
  free(): void;
}
