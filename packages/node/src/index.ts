export const PACKAGE = '@weldr/node';
