# Lite-HRNet-18 on MPII, 256x256 input, official recipe; PCKh@0.5 with the
# official head boxes (mpii_gt_val.mat). Paper: 86.1 (mmpose: 85.9).
_base_ = [
    '../_base_/models/topdown-heatmap_litehrnet18.py',
    '../_base_/schedules/pose_adam_210e.py',
    '../_base_/pose_runtime.py',
]
dataset_type = 'MpiiDataset'
data_root = 'data/mpii/'
input_size = (256, 256)
heatmap_size = (64, 64)
codec = dict(
    input_size=input_size, heatmap_size=heatmap_size, sigma=2, unbiased=False
)
model = dict(head=dict(out_channels=16, decoder=codec))
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
    dict(type='TopdownAffine', input_size=input_size),
    dict(
        type='GenerateHeatmapTarget',
        encoder=dict(
            input_size=input_size, heatmap_size=heatmap_size, sigma=2
        ),
    ),
    dict(type='PackPoseInputs'),
]
val_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='GetBBoxCenterScale', padding=1.25),
    dict(type='TopdownAffine', input_size=input_size),
    dict(type='PackPoseInputs'),
]
train_dataloader = dict(
    batch_size=64,
    num_workers=4,
    persistent_workers=True,
    sampler=dict(type='DefaultSampler', shuffle=True),
    dataset=dict(
        type=dataset_type,
        data_root=data_root,
        ann_file='annotations/mpii_train.json',
        data_prefix=dict(img='images/'),
        pipeline=train_pipeline,
    ),
)
val_dataloader = dict(
    batch_size=32,
    num_workers=4,
    persistent_workers=True,
    drop_last=False,
    sampler=dict(type='DefaultSampler', shuffle=False, round_up=False),
    dataset=dict(
        type=dataset_type,
        data_root=data_root,
        ann_file='annotations/mpii_val.json',
        headbox_file=data_root + 'annotations/mpii_gt_val.mat',
        data_prefix=dict(img='images/'),
        test_mode=True,
        pipeline=val_pipeline,
    ),
)
test_dataloader = val_dataloader
val_evaluator = dict(type='MpiiPCKAccuracy')
test_evaluator = val_evaluator
default_hooks = dict(checkpoint=dict(save_best='pck/PCKh'))
