import sharp from 'sharp';
import { encodeJpeg } from '../src/index.js';
import { readGolden } from './golden.js';
import { syntheticPhoto, toGray } from './synthetic.js';

/** Small, varied valid JPEGs: golden PIL files, restart markers, grayscale, 4:4:4, progressive mozjpeg. */
export async function fuzzSeeds(): Promise<Uint8Array[]> {
  const photo = syntheticPhoto(48, 40, 42);
  const progressive = async (chromaSubsampling: '4:2:0' | '4:4:4') =>
    new Uint8Array(
      await sharp(Buffer.from(photo.data), { raw: { width: photo.width, height: photo.height, channels: 3 } })
        .jpeg({ quality: 70, progressive: true, mozjpeg: true, chromaSubsampling })
        .toBuffer(),
    );
  return [
    readGolden('encoded/grad_noise_w64_h48/pil_q50.jpg'),
    readGolden('encoded/odd_w37_h53/pil_q90.jpg'),
    encodeJpeg(photo, { quality: 80, restartInterval: 2, optimizeHuffman: true }),
    encodeJpeg(toGray(photo), { quality: 60 }),
    encodeJpeg(photo, { quality: 30, subsampling: '4:4:4' }),
    await progressive('4:2:0'),
    await progressive('4:4:4'),
  ];
}
