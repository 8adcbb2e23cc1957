/** Service identifiers for what the composition root binds beyond the ports. */
export const Tokens = {
  Settings: Symbol.for('image-ts.Settings'),
  PullImage: Symbol.for('image-ts.PullImage'),
  ManageImages: Symbol.for('image-ts.ManageImages'),
  Clock: Symbol.for('image-ts.Clock'),
  /** Unique ids (leases, snapshots), so that the domain holds no source of randomness. */
  Ids: Symbol.for('image-ts.Ids'),
  /** Extra CA certificates (PEM) every TLS client trusts: registries, the KBS, lookaside. */
  CaPems: Symbol.for('image-ts.CaPems'),
  LayerKeys: Symbol.for('image-ts.LayerKeys'),
  PolicyGate: Symbol.for('image-ts.PolicyGate'),
  /** The unpack limits in force: the settings' over the profile's defaults. */
  Limits: Symbol.for('image-ts.Limits'),
  /** registries.conf's loader, shared by the registry source and short-name resolution; unbound without one. */
  Registries: Symbol.for('image-ts.Registries'),
} as const;
