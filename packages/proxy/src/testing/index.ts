// Helpers for tests in this package and in other places (`@weldr/proxy/testing`).
export { hasOpenssl, makeCa, type TestCa, type TestCert } from './certs.js';
