// What tests in other places reuse of the node's own code (`@weldr/node/testing`). Kept
// apart from the package's main entry, which loads all of the node (about a second):
// every e2e test file would pay that for a few small helpers.
export { jsonObjectLines } from '../dev-cluster/json-lines.js';
