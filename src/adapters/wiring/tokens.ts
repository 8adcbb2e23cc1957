/** Service identifiers for what the composition root binds beyond the ports. */
export const Tokens = {
  Settings: Symbol.for('image-ts.Settings'),
  PullImage: Symbol.for('image-ts.PullImage'),
  ManageImages: Symbol.for('image-ts.ManageImages'),
  BundleFs: Symbol.for('image-ts.BundleFs'),
  Clock: Symbol.for('image-ts.Clock'),
} as const;
