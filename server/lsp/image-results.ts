/**
 * The latest inference result of each image (by absolute path), for the hover on a config's
 * `images:` entries: the latest run of an image wins, whichever config ran it.
 */
import path from 'node:path';
import type { InferReport } from '../../protocol/infer';
import { overlayCaption } from '../jobs/infer/captions';
import { filePathOf, resolveNearConfig } from '../inputs/locate';
import type { ImageResult } from './features/hover';

export class ImageResults {
  private readonly latest = new Map<string, ImageResult>();

  /** Remembers the overlay and caption of every image of a finished inference. */
  remember(report: InferReport): void {
    for (const item of report.items) {
      const caption = overlayCaption(report, item);
      if (caption && item.overlayImage)
        this.latest.set(path.resolve(item.name), { overlayImage: item.overlayImage, caption });
    }
  }

  /** The lookup for a config's hover: its `images:` entries are written relative to it. */
  near(configUri: string): (written: string) => ImageResult | undefined {
    return (written) => this.latest.get(resolveNearConfig(filePathOf(configUri), written));
  }
}
