#!/usr/bin/python3
"""
Reference data for the image pipeline (server/inputs/image*), made with Pillow the way
timm's evaluation transform (torchvision on PIL images) does it. Development-time only:

    /usr/bin/python3 scripts/make-image-refs.py

needs Pillow (9.4 here), numpy and torch (1.13 here; ToTensor/Normalize arithmetic);
torchvision is not installed, so its few PIL-path steps are restated below from its
source (transforms/functional.py: _compute_resized_output_size, center_crop, to_tensor,
normalize). Writes into fixtures/images/:

  * small synthetic images covering the decoder's conversions (greyscale, grey+alpha,
    palette with tRNS, RGBA, 1-bit, 16-bit, greyscale and progressive JPEG, EXIF
    orientation, lossless WebP with alpha, CMYK JPEG), made from a crop of chelsea.png
    so their content is photographic but their files are a few KB;
  * refs.json: per image the Pillow decode (size, mode, SHA-256 of the RGB bytes);
    Pillow resizes of chosen sizes (SHA-256 + sampled bytes); eval-transform cases
    (resize size, crop offsets, SHA-256 of the resized and cropped uint8 images, per-channel
    sums and sampled values of the float32 tensor);
  * chelsea_224.bin: the whole float32 NCHW tensor of the default case for chelsea.png.

The photographs (chelsea.png, coffee.jpg, astronaut.webp) are copies of scikit-image's
sample data as Debian ships it (python3-skimage; CC0 / public domain, see
fixtures/images/README.md).
"""
import hashlib
import io
import json
import math
import struct
import zlib
from pathlib import Path

import numpy as np
import PIL
import torch
from PIL import Image, ImageOps

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / 'fixtures' / 'images'

MEAN = (0.485, 0.456, 0.406)
STD = (0.229, 0.224, 0.225)
PHOTOS = ['chelsea.png', 'coffee.jpg', 'astronaut.webp']
FILTERS = {'bicubic': Image.BICUBIC, 'bilinear': Image.BILINEAR}
SAMPLES = 256

rng = np.random.RandomState(20240611)


def sha256(a: np.ndarray) -> str:
    return hashlib.sha256(np.ascontiguousarray(a).tobytes()).hexdigest()


def sampled(flat: np.ndarray, count: int = SAMPLES):
    """[index, value] pairs at sorted random positions (the indices are stored, not re-derived)."""
    idx = np.sort(rng.choice(flat.size, size=min(count, flat.size), replace=False))
    return [[int(i), flat[i].item()] for i in idx]


def rgb_array(img: Image.Image) -> np.ndarray:
    return np.asarray(img.convert('RGB'), dtype=np.uint8)


# ---------------------------------------------------------------------------------------
# Synthetic inputs

def png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack('>I', len(data)) + kind + data + struct.pack('>I', zlib.crc32(kind + data))


def png16(a: np.ndarray) -> bytes:
    """A 16-bit PNG (Pillow cannot write 16-bit RGB): a is uint16 HxW (grey) or HxWx3."""
    h, w = a.shape[:2]
    colour_type = 0 if a.ndim == 2 else 2
    rows = a.astype('>u2').reshape(h, -1).tobytes()
    stride = len(rows) // h
    raw = b''.join(b'\x00' + rows[y * stride:(y + 1) * stride] for y in range(h))
    ihdr = struct.pack('>IIBBBBB', w, h, 16, colour_type, 0, 0, 0)
    return b'\x89PNG\r\n\x1a\n' + png_chunk(b'IHDR', ihdr) + png_chunk(b'IDAT', zlib.compress(raw, 9)) + png_chunk(b'IEND', b'')


def exif_orientation(value: int) -> bytes:
    exif = Image.Exif()
    exif[0x0112] = value
    return exif.tobytes()


def write_synthetics() -> dict:
    """Writes the small conversion-coverage images; returns notes for refs.json."""
    base = Image.open(OUT / 'chelsea.png').convert('RGB').crop((120, 40, 376, 232)).resize((64, 48), Image.BICUBIC)
    a = np.asarray(base)
    ramp = np.tile(np.linspace(0, 255, 64).astype(np.uint8), (48, 1))
    notes = {}

    base.convert('L').save(OUT / 'grey.png')
    Image.merge('LA', (base.convert('L'), Image.fromarray(ramp))).save(OUT / 'grey-alpha.png')
    pal = base.quantize(colors=64, method=Image.Quantize.MEDIANCUT, dither=Image.Dither.NONE)
    pal.save(OUT / 'palette-trns.png', transparency=0)
    Image.merge('RGBA', (*base.split(), Image.fromarray(ramp))).save(OUT / 'rgba.png')
    # tRNS with an RGB colour that occurs in the picture: its pixels must keep their colour.
    base.save(OUT / 'rgb-trns.png', transparency=tuple(int(v) for v in a[0, 0]))
    base.convert('L').point(lambda v: 255 if v > 110 else 0).convert('1').save(OUT / 'bilevel.png')

    # 16-bit: the low byte is not a copy of the high byte, so high-byte truncation
    # (Pillow, libvips) and rounding (pngjs' default rescale) give different results.
    low = ((np.arange(64)[None, :] * 37 + np.arange(48)[:, None] * 91) % 256).astype(np.uint16)
    (OUT / 'rgb16.png').write_bytes(png16((a.astype(np.uint16) << 8) | low[..., None]))
    grey16 = (np.asarray(base.convert('L')).astype(np.uint16) << 8) | low
    (OUT / 'grey16.png').write_bytes(png16(grey16))
    notes['grey16.png'] = ('Pillow opens 16-bit greyscale as mode I and convert("RGB") saturates every value '
                           'above 255; the reference is the high byte (v >> 8), as for 16-bit RGB')

    odd = Image.open(OUT / 'chelsea.png').convert('RGB').crop((100, 30, 415, 265)).resize((63, 47), Image.BICUBIC)
    odd.convert('L').save(OUT / 'grey.jpg', quality=90)
    odd.save(OUT / 'progressive.jpg', quality=85, progressive=True, subsampling='4:2:0')
    odd.convert('CMYK').save(OUT / 'cmyk.jpg', quality=90)
    notes['cmyk.jpg'] = 'CMYK JPEG (Adobe marker): Pillow converts with its cmyk2rgb formula, no ICC profile'

    # Orientation 6 (the usual phone-portrait tag) on a JPEG, 5 (a transpose, the mirrored
    # case) on a PNG eXIf chunk: the parser must find both containers.
    odd.save(OUT / 'orient6.jpg', quality=90, exif=exif_orientation(6))
    base.save(OUT / 'orient5.png', exif=exif_orientation(5))

    Image.merge('RGBA', (*base.split(), Image.fromarray(ramp))).save(OUT / 'rgba-lossless.webp', lossless=True)
    return notes


SYNTHETICS = ['grey.png', 'grey-alpha.png', 'palette-trns.png', 'rgba.png', 'rgb-trns.png', 'bilevel.png', 'rgb16.png',
              'grey16.png', 'grey.jpg', 'progressive.jpg', 'cmyk.jpg', 'orient6.jpg', 'orient5.png',
              'rgba-lossless.webp']


def decoded_rgb(name: str) -> np.ndarray:
    if name == 'grey16.png':
        v = np.asarray(Image.open(OUT / name), dtype=np.int64) >> 8
        return np.repeat(v.astype(np.uint8)[..., None], 3, axis=2)
    return rgb_array(Image.open(OUT / name))


# ---------------------------------------------------------------------------------------
# torchvision's PIL path, restated

def resized_size(w: int, h: int, size: int):
    """torchvision _compute_resized_output_size for an int size (the shorter side); (w, h)."""
    short, long = (w, h) if w <= h else (h, w)
    new_short, new_long = size, int(size * long / short)
    return (new_short, new_long) if w <= h else (new_long, new_short)


def tv_resize(img: Image.Image, size: int, interpolation: int) -> Image.Image:
    w, h = img.size
    nw, nh = resized_size(w, h, size)
    if (nw, nh) == (w, h):
        return img
    return img.resize((nw, nh), interpolation)


def tv_center_crop(img: Image.Image, size: int):
    """
    torchvision F.center_crop on PIL: zero padding when the crop is larger, then round().
    Returns the crop and its origin in the unpadded image (negative where padded).
    """
    w, h = img.size
    pad = [0, 0, 0, 0]
    if size > w or size > h:
        pad = [(size - w) // 2 if size > w else 0, (size - h) // 2 if size > h else 0,
               (size - w + 1) // 2 if size > w else 0, (size - h + 1) // 2 if size > h else 0]
        img = ImageOps.expand(img, border=tuple(pad), fill=0)
        w, h = img.size
        if (w, h) == (size, size):
            return img, -pad[1], -pad[0]
    top = int(round((h - size) / 2.0))
    left = int(round((w - size) / 2.0))
    return img.crop((left, top, left + size, top + size)), top - pad[1], left - pad[0]


def tv_to_tensor_normalize(img: Image.Image) -> torch.Tensor:
    t = torch.from_numpy(np.array(img, dtype=np.uint8, copy=True)).permute(2, 0, 1).contiguous().float().div(255)
    mean = torch.as_tensor(MEAN, dtype=torch.float32).view(-1, 1, 1)
    std = torch.as_tensor(STD, dtype=torch.float32).view(-1, 1, 1)
    return t.sub_(mean).div_(std).unsqueeze(0)


def eval_case(name: str, size: int, crop_pct: float, interpolation: str, full_bin: str | None = None) -> dict:
    img = Image.fromarray(decoded_rgb(name))
    scale = math.floor(size / crop_pct)  # timm transforms_imagenet_eval
    resized = tv_resize(img, scale, FILTERS[interpolation])
    cropped, top, left = tv_center_crop(resized, size)
    tensor = tv_to_tensor_normalize(cropped).numpy()
    r = np.asarray(resized)
    case = {
        'image': name, 'size': size, 'crop_pct': crop_pct, 'interpolation': interpolation,
        'scale_size': scale,
        'resized': {'width': resized.size[0], 'height': resized.size[1], 'sha256': sha256(r),
                    'samples': sampled(r.reshape(-1))},
        'crop_top': top, 'crop_left': left, 'cropped_sha256': sha256(np.asarray(cropped)),
        'tensor_channel_sums': [float(tensor[0, c].astype(np.float64).sum()) for c in range(3)],
        'tensor_samples': sampled(tensor.reshape(-1)),
    }
    if full_bin:
        tensor.astype('<f4').tofile(OUT / full_bin)
        case['tensor_bin'] = full_bin
    return case


def resize_case(source: np.ndarray, label: str, width: int, height: int, interpolation: str) -> dict:
    out = np.asarray(Image.fromarray(source).resize((width, height), FILTERS[interpolation]))
    return {'source': label, 'width': width, 'height': height, 'interpolation': interpolation,
            'sha256': sha256(out), 'samples': sampled(out.reshape(-1))}


def orientation_table() -> dict:
    """ImageOps.exif_transpose of a 3×2 image carrying each EXIF orientation 1–8."""
    y, x = np.mgrid[0:2, 0:3]
    src = np.stack([16 * y + x, 100 + x, 200 + y], axis=2).astype(np.uint8)
    table = {'source': {'width': 3, 'height': 2, 'data': src.reshape(-1).tolist()}}
    for o in range(1, 9):
        buf = io.BytesIO()
        Image.fromarray(src).save(buf, 'PNG', exif=exif_orientation(o))
        out = ImageOps.exif_transpose(Image.open(io.BytesIO(buf.getvalue())))
        table[str(o)] = {'width': out.size[0], 'height': out.size[1], 'data': rgb_array(out).reshape(-1).tolist()}
    return table


def compact_json(obj, indent: int = 0) -> str:
    """Indented JSON whose lists of numbers (and of [index, value] pairs) stay on one line."""
    pad = ' ' * indent
    leaf = lambda v: not isinstance(v, (dict, list)) or (isinstance(v, list) and all(not isinstance(u, (dict, list)) for u in v))
    if isinstance(obj, dict):
        return '{\n' + ',\n'.join(f'{pad} {json.dumps(k)}: {compact_json(v, indent + 1)}' for k, v in obj.items()) + f'\n{pad}}}'
    if isinstance(obj, list) and not all(leaf(v) for v in obj):
        return '[\n' + ',\n'.join(f'{pad} {compact_json(v, indent + 1)}' for v in obj) + f'\n{pad}]'
    return json.dumps(obj, separators=(',', ':'))


def pattern(width: int, height: int) -> np.ndarray:
    """A synthetic RGB image the test rebuilds from the same formula (no file needed)."""
    y, x = np.mgrid[0:height, 0:width].astype(np.int64)
    chans = [(x * 3 + y * 5 + c * 71 + (x * y) % 251 + ((x // 7 + y // 11) % 2) * 90) % 256 for c in range(3)]
    return np.stack(chans, axis=2).astype(np.uint8)


def main() -> None:
    notes = write_synthetics()

    decode = {}
    for name in PHOTOS + SYNTHETICS:
        im = Image.open(OUT / name)
        rgb = decoded_rgb(name)
        entry = {'format': im.format, 'mode': im.mode, 'width': im.size[0], 'height': im.size[1],
                 'sha256': sha256(rgb)}
        orientation = im.getexif().get(0x0112)
        if orientation:
            entry['exif_orientation'] = orientation
            entry['transposed_sha256'] = sha256(rgb_array(ImageOps.exif_transpose(Image.open(OUT / name))))
        if name in notes:
            entry['note'] = notes[name]
        decode[name] = entry

    chelsea = decoded_rgb('chelsea.png')
    small = decoded_rgb('rgba.png')
    resize = [
        resize_case(chelsea, 'chelsea.png', 372, 248, 'bicubic'),
        resize_case(chelsea, 'chelsea.png', 400, 300, 'bicubic'),   # horizontal pass only
        resize_case(chelsea, 'chelsea.png', 451, 200, 'bicubic'),   # vertical pass only
        resize_case(chelsea, 'chelsea.png', 900, 600, 'bicubic'),   # upscale
        resize_case(chelsea, 'chelsea.png', 50, 33, 'bicubic'),     # wide support (scale 9)
        resize_case(chelsea, 'chelsea.png', 372, 248, 'bilinear'),
        resize_case(small, 'rgba.png', 331, 248, 'bicubic'),        # strong upscale
        resize_case(pattern(1024, 768), 'pattern:1024x768', 330, 248, 'bicubic'),
    ]

    cases = [
        eval_case('chelsea.png', 224, 0.9, 'bicubic', full_bin='chelsea_224.bin'),
        eval_case('coffee.jpg', 224, 0.9, 'bicubic'),
        eval_case('astronaut.webp', 224, 0.9, 'bicubic'),
        eval_case('chelsea.png', 384, 0.9, 'bicubic'),
        eval_case('coffee.jpg', 224, 0.875, 'bilinear'),
        # scale 249: the vertical offset (249 - 224) / 2 = 12.5 rounds half to even (12)
        eval_case('chelsea.png', 224, 0.8978, 'bicubic'),
        # crop_pct > 1: the resized image is smaller than the crop, torchvision pads with 0
        eval_case('astronaut.webp', 224, 1.2, 'bicubic'),
        eval_case('rgba.png', 224, 0.9, 'bicubic'),
    ]

    refs = {
        'generator': 'scripts/make-image-refs.py',
        'pillow': PIL.__version__, 'torch': torch.__version__, 'numpy': np.__version__,
        'mean': MEAN, 'std': STD,
        'decode': decode, 'orientations': orientation_table(), 'resize': resize, 'eval': cases,
    }
    (OUT / 'refs.json').write_text(compact_json(refs) + '\n')
    print(f'wrote {OUT / "refs.json"}')


if __name__ == '__main__':
    main()
