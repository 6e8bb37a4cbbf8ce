// Fetches a model's files chunk by chunk from a ChunkSource, or from the
// cache, checks each piece's SHA-256 against the manifest before use, and
// hands the pieces on in order (to the CPU worker).

import type { ChunkSource, LoadProgress } from './backend';
import { ChunkStore, sha256Hex } from './store';

/** The parts of `manifest.json` the download needs. */
export interface ManifestInfo {
  name: string;
  chunk_size: number;
  tokenizer: { file: string; size: number; sha256: string };
  stages: { index: number; size: number; sha256: string; chunks: { size: number; sha256: string }[] }[];
}

export interface ChunkSink {
  tokenizerChunk(index: number, bytes: Uint8Array): void;
  stageChunk(stage: number, index: number, bytes: Uint8Array): void;
}

export class IntegrityError extends Error {}

export function parseManifest(bytes: Uint8Array): ManifestInfo {
  const m = JSON.parse(new TextDecoder().decode(bytes)) as ManifestInfo;
  if (typeof m?.name !== 'string' || !(m.chunk_size > 0) || !Array.isArray(m.stages) || !m.tokenizer) {
    throw new IntegrityError('The model manifest the canisters sent is not a valid manifest.');
  }
  return m;
}

/** A buffer of its own (a view may share a larger one), to transfer. */
function owned(bytes: Uint8Array): Uint8Array {
  return bytes.byteOffset === 0 && bytes.byteLength === bytes.buffer.byteLength ? bytes : bytes.slice();
}

export async function downloadModel(
  source: ChunkSource,
  manifestBytes: Uint8Array,
  store: ChunkStore,
  sink: ChunkSink,
  onProgress: (p: LoadProgress) => void,
): Promise<void> {
  const m = parseManifest(manifestBytes);
  const totalBytes = m.tokenizer.size + m.stages.reduce((n, s) => n + s.size, 0);
  let loadedBytes = 0;
  let fromCache = 0;
  let fetched = 0;
  const report = (phase: string) =>
    onProgress({ loadedBytes, totalBytes, phase, notice: store.notice ?? undefined });

  // The tokenizer: its pieces have no hash of their own, the whole file has.
  const pieces = Math.ceil(m.tokenizer.size / m.chunk_size);
  let tokenizer = await store.get(m.tokenizer.sha256);
  if (!tokenizer) {
    const parts: Uint8Array[] = [];
    for (let i = 0; i < pieces; i++) {
      report(`tokenizer, piece ${i + 1} of ${pieces}`);
      parts.push(await source.tokenizerChunk(i));
    }
    tokenizer = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
    let at = 0;
    for (const p of parts) {
      tokenizer.set(p, at);
      at += p.length;
    }
    if (tokenizer.length !== m.tokenizer.size || (await sha256Hex(tokenizer)) !== m.tokenizer.sha256) {
      throw new IntegrityError("The model's tokenizer from the canisters does not match its SHA-256 in the manifest.");
    }
    await store.put(m.tokenizer.sha256, tokenizer);
  }
  for (let i = 0; i < pieces; i++) {
    sink.tokenizerChunk(i, tokenizer.slice(i * m.chunk_size, (i + 1) * m.chunk_size));
  }
  loadedBytes += m.tokenizer.size;

  for (const stage of m.stages) {
    const n = stage.chunks.length;
    for (let i = 0; i < n; i++) {
      const chunk = stage.chunks[i];
      let bytes = await store.get(chunk.sha256);
      if (bytes) {
        fromCache++;
      } else {
        report(`stage ${stage.index}, chunk ${i + 1} of ${n}: downloading`);
        bytes = await source.stageChunk(stage.index, i);
        if (bytes.length !== chunk.size || (await sha256Hex(bytes)) !== chunk.sha256) {
          throw new IntegrityError(
            `Chunk ${i + 1} of stage ${stage.index} from the canisters does not match its SHA-256 in the manifest.`,
          );
        }
        await store.put(chunk.sha256, bytes);
        fetched++;
      }
      sink.stageChunk(stage.index, i, owned(bytes));
      loadedBytes += chunk.size;
      report(`stage ${stage.index}, chunk ${i + 1} of ${n} (${fromCache} from the cache, ${fetched} downloaded)`);
    }
  }
}
