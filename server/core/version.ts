/** The product version, read from package.json at build time (esbuild inlines the JSON). */
import pkg from '../../package.json';

export const VERSION: string = pkg.version;
/** Names who produced a result, in reports and dashboards. */
export const PRODUCER = `ViT Lens ${VERSION} CLI`;
