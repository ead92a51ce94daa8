# Lite-HRNet-18 at 384x288 (sigma 3, batch 32 per GPU as the official
# config). Paper: 67.6 AP.
_base_ = './topdown-heatmap_litehrnet18_8xb64-210e_coco-256x192.py'
# This recipe's codec (replaces the 256x192 one), for both the targets and
# the head's decoding.
codec = dict(
    input_size=(288, 384), heatmap_size=(72, 96), sigma=3, unbiased=False
)
model = dict(head=dict(decoder=codec))
train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='GetBBoxCenterScale', padding=1.25),
    dict(type='TopdownRandomFlip', prob=0.5),
    dict(type='RandomHalfBody', prob=0.3),
    dict(
        type='RandomBBoxTransform',
        shift_prob=0.0,
        scale_factor=(0.75, 1.25),
        rotate_factor=30.0,
    ),
    dict(type='TopdownAffine', input_size=codec['input_size']),
    dict(type='GenerateHeatmapTarget', encoder=codec),
    dict(type='PackPoseInputs'),
]
val_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='GetBBoxCenterScale', padding=1.25),
    dict(type='TopdownAffine', input_size=codec['input_size']),
    dict(type='PackPoseInputs'),
]
train_dataloader = dict(batch_size=32, dataset=dict(pipeline=train_pipeline))
val_dataloader = dict(dataset=dict(pipeline=val_pipeline))
test_dataloader = val_dataloader
auto_scale_lr = dict(base_batch_size=256)
