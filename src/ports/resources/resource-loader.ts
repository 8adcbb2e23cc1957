/**
 * Policy files, keys and other configuration named by a resource URI: a bare
 * path, `file://`, or `kbs:///repo/type/tag` through the key broker (cached
 * for a bounded time, never forever).
 */
export interface ResourceLoader {
  load(uri: string, signal?: AbortSignal): Promise<Buffer>;
}
