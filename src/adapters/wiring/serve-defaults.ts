/**
 * Where `serve` lets callers put bundles when the config names no roots.
 * In a Kata guest the agent puts every container's bundle under
 * /run/kata-containers; a host has no such convention, so standalone (and
 * the other profiles) confine nothing unless configured.
 */
export function defaultBundleRoots(profile: string): string[] {
  return profile === 'cdh-guest' ? ['/run/kata-containers'] : [];
}
