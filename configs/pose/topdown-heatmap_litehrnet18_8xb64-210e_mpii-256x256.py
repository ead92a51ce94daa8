# Lite-HRNet-18 on MPII, 256x256 input, official recipe; PCKh@0.5 with the
# official head boxes (mpii_gt_val.mat). Paper: 86.1 (mmpose: 85.9).
_base_ = [
    '../_base_/models/topdown-heatmap_litehrnet18.py',
    '../_base_/datasets/mpii_topdown.py',
    '../_base_/schedules/pose_adam_210e.py',
    '../_base_/pose_runtime.py',
]
# 16 MPII joints; the head decodes with the codec the pipeline encodes with.
model = dict(head=dict(out_channels=16, decoder=_base_.codec))
default_hooks = dict(checkpoint=dict(save_best='pck/PCKh'))
