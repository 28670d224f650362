/**
 * Writes schema/vitlens-config.schema.json from CONFIG_KEYS (server/core/config/format.ts).
 * test/schema.test.ts fails when the committed file differs from what this writes.
 *
 *   npm run schema
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { configJsonSchema } from '../server/core/config/schema';

// Resolved from this file, not the working directory, so the script works from any folder.
const target = fileURLToPath(new URL('../schema/vitlens-config.schema.json', import.meta.url));
mkdirSync(dirname(target), { recursive: true });
writeFileSync(target, JSON.stringify(configJsonSchema(), null, 2) + '\n');
console.log(`wrote ${target}`);
