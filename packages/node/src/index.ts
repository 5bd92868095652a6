export const PACKAGE = '@weldr/node';
export { main } from './main.js';
export { startTestServer, type TestServer, type TestServerOptions } from './test-server/server.js';
export { largeBodySlice, firstLargeBodyMismatch, chunkedParts, FILL_BYTE, LARGE_LINE_BYTES } from './test-server/body-patterns.js';
export { DEFAULT_LARGE_BYTES } from './test-server/routes.js';
export { encodeFrame, websocketAccept } from './test-server/websocket-echo.js';
export { loadConfig, type LoadedConfig, type LoadResult, type ConfigSource } from './config/load-config.js';
export { OPTIONS, type NodeConfig } from './config/options.js';
export { ConfigError, EXIT_USAGE } from './config/config-error.js';
