/** Helpers for tests, demos and benchmarks that drive a ztunnel from the outside. */
export { httpGet, plainGet, socksConnect } from './socks-client.js';
