# Ablation: the full-width concat head (mmseg's FCNHead, mixing channels =
# the 600 concatenated channels) on the raw stage-3 branches (40, 80, 160,
# 320 channels) instead of the IterativeHead outputs. The unmerged mmseg
# port measured 69.0 mIoU this way vs 71.8 with the IterativeHead (and the
# 320-channel head, fcn-concat320_*); the backbone then lacks the
# `head_layer.*` keys of the pose checkpoints.
_base_ = './fcn-concat320_litehrnet18_4xb4-160k_cityscapes-512x1024.py'
model = dict(
    backbone=dict(with_head=False),
    decode_head=dict(in_channels=[40, 80, 160, 320], channels=600),
)
