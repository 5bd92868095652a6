export const PACKAGE = '@weldr/admin';
