export const PACKAGE = '@weldr/store';
