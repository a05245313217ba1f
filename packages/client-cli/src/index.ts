// Filled in by its own issue; this package only builds for now.
export const packageName = '@ferry/client-cli';
