import type { Logger } from '../../ports/observability/logger.js';

/** The logger of an adapter built without one: it drops every event. */
export const silentLogger: Logger = { log: () => undefined };
