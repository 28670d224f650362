/**
 * Writes server/inputs/imagenet-classes.json: the 1000 ImageNet-1k (ILSVRC-2012) class names
 * in index order, copied from @tensorflow-models/mobilenet (dist/imagenet_classes.js,
 * IMAGENET_CLASSES; Copyright 2019 Google LLC, Apache License 2.0), a devDependency. The
 * JSON carries that source and licence with it. test/image.test.ts fails when the committed
 * file differs from the package's list.
 *
 *   node --import tsx scripts/copy-imagenet-classes.ts
 */
import { writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { IMAGENET_CLASSES } from '@tensorflow-models/mobilenet/dist/imagenet_classes.js';
import mobilenetPackage from '@tensorflow-models/mobilenet/package.json';

export interface ImagenetClassesFile {
  source: string;
  license: string;
  note: string;
  classes: string[];
}

/** The package's id → name map as a dense array, refusing gaps or a wrong count. */
export function mobilenetClassList(): string[] {
  const classes: string[] = [];
  for (let i = 0; i < 1000; i++) {
    const name = IMAGENET_CLASSES[i];
    if (typeof name !== 'string') throw new Error(`IMAGENET_CLASSES has no entry ${i}`);
    classes.push(name);
  }
  if (Object.keys(IMAGENET_CLASSES).length !== 1000)
    throw new Error('IMAGENET_CLASSES does not have exactly 1000 entries');
  return classes;
}

export function imagenetClassesFile(): ImagenetClassesFile {
  return {
    source: `@tensorflow-models/mobilenet ${mobilenetPackage.version}, dist/imagenet_classes.js (IMAGENET_CLASSES), https://github.com/tensorflow/tfjs-models`,
    license: 'Apache-2.0 (Copyright 2019 Google LLC), http://www.apache.org/licenses/LICENSE-2.0',
    note: 'ImageNet-1k class names by class index; each entry lists WordNet synonyms separated by ", " (134 and 517 are both "crane").',
    classes: mobilenetClassList(),
  };
}

// Run as a script (not when a test imports the helpers above).
if (process.argv[1] && fileURLToPath(new URL(import.meta.url)) === process.argv[1]) {
  const target = fileURLToPath(new URL('../server/inputs/imagenet-classes.json', import.meta.url));
  writeFileSync(target, JSON.stringify(imagenetClassesFile(), null, 1) + '\n');
  console.log(`wrote ${target}`);
}
