"""Run a top-down pose model on an image and save a skeleton overlay.

    python tools/pose_demo.py IMAGE CONFIG CHECKPOINT --out overlay.png \
        [--bboxes x1 y1 x2 y2 [x1 y1 x2 y2 ...]] [--score-thr 0.3]

Without ``--bboxes`` the whole image is one person box.
"""

import argparse
import sys
from pathlib import Path

import mmcv
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from litehrnet_seg.apis import inference_topdown, init_model  # noqa: E402
from litehrnet_seg.visualization import draw_skeleton  # noqa: E402


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('image', help='image file')
    parser.add_argument('config', help='pose config file')
    parser.add_argument('checkpoint', help='checkpoint file')
    parser.add_argument('--out', required=True, help='overlay PNG to write')
    parser.add_argument(
        '--bboxes',
        type=float,
        nargs='+',
        default=None,
        help='person boxes, xyxy pixels, 4 numbers each',
    )
    parser.add_argument('--score-thr', type=float, default=0.3)
    parser.add_argument('--device', default='cpu')
    args = parser.parse_args(argv)
    if args.bboxes is not None and len(args.bboxes) % 4:
        parser.error('--bboxes takes 4 numbers per box (x1 y1 x2 y2)')
    return args


def main(argv=None) -> np.ndarray:
    args = parse_args(argv)
    if not Path(args.image).is_file():
        sys.exit(f'error: image {args.image} not found')
    model = init_model(args.config, args.checkpoint, args.device)
    bboxes = None if args.bboxes is None else np.reshape(args.bboxes, (-1, 4))
    samples = inference_topdown(model, args.image, bboxes)
    keypoints = np.concatenate([s.pred_instances.keypoints for s in samples])
    scores = np.concatenate(
        [s.pred_instances.keypoint_scores for s in samples]
    )
    links = model.dataset_meta.get('skeleton_links', [])
    overlay = draw_skeleton(
        mmcv.imread(args.image), keypoints, scores, links, args.score_thr
    )
    mmcv.imwrite(overlay, args.out)
    print(f'{len(samples)} person(s); overlay written to {args.out}')
    return keypoints


if __name__ == '__main__':
    main()
