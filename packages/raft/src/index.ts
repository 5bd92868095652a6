export const PACKAGE = '@weldr/raft';
