import { Container, type ContainerModule } from 'inversify';
import { ConfigFileError } from '../../domain/errors.js';
import { profileModules, type RuntimeContext } from './modules/profiles.js';
import { AttestationAgentToken, KeyBrokerToken } from './port-tokens.js';

export type { RuntimeContext } from './modules/profiles.js';

/** A binding to put in place of the profile's: a token and the value every consumer then gets. */
export interface Override {
  readonly token: symbol;
  /** For multi-bound ports (image sources, key unwrappers): every value replaces all the profile's. */
  readonly values: readonly unknown[];
}

export interface BuildOptions {
  /** Replace the profile's bindings before anything is resolved, so that they reach every consumer. */
  readonly overrides?: readonly Override[];
  /** More modules, loaded after the profile's (they may bind what the profile does not). */
  readonly modules?: readonly ContainerModule[];
}

/**
 * The composition root: the profile's modules, then the caller's modules
 * and overrides. Singletons are made on first use, after all of this, so an
 * override reaches every consumer of its port.
 */
export async function buildContainer(context: RuntimeContext, options: BuildOptions = {}): Promise<Container> {
  const container = new Container({ defaultScope: 'Singleton' });
  await container.load(...profileModules(context), ...(options.modules ?? []));
  for (const { token, values } of options.overrides ?? []) {
    if (container.isBound(token)) await container.unbind(token);
    for (const value of values) container.bind(token).toConstantValue(value);
  }
  // A kbs broker that needs an AA the settings do not name fails now, at start, not at the first key.
  if (!container.isBound(AttestationAgentToken) && context.settings.keyBroker?.kind === 'kbs' && context.settings.keyBroker.attester === 'aa' &&
    !(options.overrides ?? []).some((o) => o.token === KeyBrokerToken)) {
    throw new ConfigFileError('key_broker kind kbs with attester "aa" needs attestation_agent.address');
  }
  return container;
}
