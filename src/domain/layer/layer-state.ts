import { ImageTsError } from '../errors.js';

/**
 * The life of one layer in a pull. Download, decompression, hashing and untar
 * happen in a single streaming pass (`fetching`); `verifying` compares both
 * digests once the stream ends; only then is the staged layer `committed`.
 * `shared` means another pull (or another process) is already producing the
 * same layer; if that one fails, this pull fetches it after all.
 */
export type LayerState = 'pending' | 'fetching' | 'shared' | 'verifying' | 'committed' | 'cached' | 'failed';

const NEXT: Readonly<Record<LayerState, readonly LayerState[]>> = {
  pending: ['fetching', 'shared', 'cached', 'failed'],
  fetching: ['verifying', 'failed'],
  shared: ['committed', 'fetching', 'failed'],
  verifying: ['committed', 'failed'],
  committed: [],
  cached: [],
  failed: [],
};

export class LayerStateMachine {
  private current: LayerState = 'pending';

  constructor(private readonly onChange?: (from: LayerState, to: LayerState) => void) {}

  get state(): LayerState {
    return this.current;
  }

  get done(): boolean {
    return NEXT[this.current].length === 0;
  }

  to(next: LayerState): void {
    if (!NEXT[this.current].includes(next)) {
      throw new ImageTsError('INTERNAL', `layer cannot go from ${this.current} to ${next}`);
    }
    const from = this.current;
    this.current = next;
    this.onChange?.(from, next);
  }
}
