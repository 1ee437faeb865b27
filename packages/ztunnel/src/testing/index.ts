/** Helpers for tests, demos and benchmarks that drive a ztunnel from the outside. */
export { loopbackNodeEnv, waitUntilReady } from './loopback.js';
export { httpGet, plainGet, socksConnect } from './socks-client.js';
