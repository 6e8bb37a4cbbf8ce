// Where downloaded weights are kept between visits: the Cache API, keyed by
// each chunk's SHA-256 (the tokenizer by its file's), and SHA-256 itself
// (SubtleCrypto), with which every piece is checked before use.
//
// A full quota (QuotaExceededError) is not an error: the store stops
// caching, the model is kept in memory for this visit only, and `notice`
// says so in plain words.

/** Hex SHA-256 of `bytes` (SubtleCrypto). */
export async function sha256Hex(bytes: Uint8Array): Promise<string> {
  const digest = await crypto.subtle.digest('SHA-256', bytes as Uint8Array<ArrayBuffer>);
  return Array.from(new Uint8Array(digest), (b) => b.toString(16).padStart(2, '0')).join('');
}

export const QUOTA_NOTICE =
  "This browser's storage is full, so the model is not saved on this device: it is kept in " +
  'memory for this visit and will be downloaded again next time.';

const CACHE_NAME = 'icllm-model-chunks-v1';

/** The Cache API's keys are URLs: one per hash, on this page's origin. */
function key(sha256: string): string {
  return new URL(`icllm-chunk/${sha256}`, location.origin + '/').toString();
}

function isQuotaError(err: unknown): boolean {
  return err instanceof DOMException && (err.name === 'QuotaExceededError' || err.code === 22);
}

export class ChunkStore {
  /** Set once caching stopped (full quota, or no Cache API here). */
  notice: string | null = null;
  private cache: Cache | null;

  private constructor(cache: Cache | null, notice: string | null) {
    this.cache = cache;
    this.notice = notice;
  }

  static async open(): Promise<ChunkStore> {
    if (typeof caches === 'undefined') {
      return new ChunkStore(null, 'This browser offers no cache to this page: the model is kept in memory for this visit only.');
    }
    try {
      return new ChunkStore(await caches.open(CACHE_NAME), null);
    } catch (err) {
      if (isQuotaError(err)) return new ChunkStore(null, QUOTA_NOTICE);
      throw err;
    }
  }

  /** Whether pieces are being saved. */
  get caching(): boolean {
    return this.cache !== null;
  }

  /** The cached bytes whose SHA-256 is `sha256`, checked; null when absent
   *  (or damaged: then the entry is dropped). */
  async get(sha256: string): Promise<Uint8Array | null> {
    if (!this.cache) return null;
    const response = await this.cache.match(key(sha256));
    if (!response) return null;
    const bytes = new Uint8Array(await response.arrayBuffer());
    if ((await sha256Hex(bytes)) === sha256) return bytes;
    await this.cache.delete(key(sha256));
    return null;
  }

  /** Saves checked bytes under their SHA-256; a full quota stops caching. */
  async put(sha256: string, bytes: Uint8Array): Promise<void> {
    if (!this.cache) return;
    try {
      await this.cache.put(
        key(sha256),
        new Response(bytes as Uint8Array<ArrayBuffer>, { headers: { 'content-type': 'application/octet-stream' } }),
      );
    } catch (err) {
      if (!isQuotaError(err)) throw err;
      this.cache = null;
      this.notice = QUOTA_NOTICE;
    }
  }
}
