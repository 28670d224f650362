/** esbuild bundles CSS imported from the entry into dist/webview.css. */
declare module '*.css';
