import type { LayerState } from '../../domain/layer/layer-state.js';

export type ProgressEvent =
  | { readonly type: 'resolved'; readonly reference: string; readonly manifestDigest: string; readonly layers: number }
  | { readonly type: 'layer-state'; readonly digest: string; readonly state: LayerState; readonly size: number }
  | { readonly type: 'layer-bytes'; readonly digest: string; readonly bytes: number; readonly size: number }
  | { readonly type: 'snapshot'; readonly snapshotter: string; readonly rootfs: string }
  | { readonly type: 'done'; readonly manifestDigest: string };

export type ProgressListener = (event: ProgressEvent) => void;
