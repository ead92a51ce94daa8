# MPII single-person keypoints (16 joints), top-down with the annotated
# person boxes; PCKh@0.5 on val with the official head boxes
# (mpii_gt_val.mat). mmpose's data layout. The crop size and heatmap
# targets come from the codec (`codec`, inherited); the pose model's
# HeatmapHead decodes with the same one.
_base_ = ['../codecs/msra-heatmap_256x256.py']
dataset_type = 'MpiiDataset'
data_root = 'data/mpii/'
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
    dict(type='TopdownAffine', input_size=_base_.codec.input_size),
    dict(type='GenerateHeatmapTarget', encoder=_base_.codec),
    dict(type='PackPoseInputs'),
]
val_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='GetBBoxCenterScale', padding=1.25),
    dict(type='TopdownAffine', input_size=_base_.codec.input_size),
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
