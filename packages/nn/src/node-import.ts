/**
 * Import a Node built-in by a name bundlers cannot see, so the browser build of the main entry carries no Node
 * import; only Node code paths call it.
 */
export const nodeModule = (name: string) => import(/* @vite-ignore */ name);
