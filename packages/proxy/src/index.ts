export const PACKAGE = '@weldr/proxy';
