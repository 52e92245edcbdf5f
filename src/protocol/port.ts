/**
 * The port of the roomcast protocol: where a server listens, and where clients dial, when no
 * port is given. It has a module of its own, free of imports, because both sides need it and
 * the client must not load the server to learn it.
 */
export const DEFAULT_PORT = 7447;
