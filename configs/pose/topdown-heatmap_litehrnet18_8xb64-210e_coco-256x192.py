# Lite-HRNet-18 top-down heatmap pose on COCO, 256x192 input, the official
# recipe: Adam 2e-3, 500-iter warmup, 210 epochs (steps 170/200), total
# batch 512, flip, half-body, rotation 30, scale 0.25, sigma 2, flip test.
# Paper: 64.8 AP (mmpose: 64.2) on val with AP-56.4 person detections.
_base_ = [
    '../_base_/models/topdown-heatmap_litehrnet18.py',
    '../_base_/datasets/coco_topdown.py',
    '../_base_/schedules/pose_adam_210e.py',
    '../_base_/pose_runtime.py',
]
# The heatmap head decodes with the codec the pipeline encodes with.
model = dict(head=dict(decoder=_base_.codec))
