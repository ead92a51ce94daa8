# Quickstart / CI config for MPII: Lite-HRNet-18 overfitting the 5 bundled
# MPII images (tests/data/mpii) on a CPU. The sample has no official head
# boxes (mpii_gt_val.mat), so validation reports PCK normalised by the
# person box instead of PCKh; with the real head boxes use the full config.
_base_ = './topdown-heatmap_litehrnet18_8xb64-210e_mpii-256x256.py'
data_root = 'tests/data/mpii/'
train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='GetBBoxCenterScale', padding=1.25),
    dict(type='TopdownAffine', input_size=_base_.codec.input_size),
    dict(type='GenerateHeatmapTarget', encoder=_base_.codec),
    dict(type='PackPoseInputs'),
]
train_dataloader = dict(
    batch_size=5,
    num_workers=0,
    persistent_workers=False,
    sampler=dict(type='InfiniteSampler', shuffle=True),
    dataset=dict(
        data_root=data_root,
        ann_file='test_mpii.json',
        data_prefix=dict(img=''),
        pipeline=train_pipeline,
    ),
)
val_dataloader = dict(
    batch_size=5,
    num_workers=0,
    persistent_workers=False,
    dataset=dict(
        data_root=data_root,
        ann_file='test_mpii.json',
        headbox_file=None,
        data_prefix=dict(img=''),
    ),
)
test_dataloader = val_dataloader
val_evaluator = dict(type='MpiiPCKAccuracy', norm_item='bbox')
test_evaluator = val_evaluator
optim_wrapper = dict(optimizer=dict(type='Adam', lr=5e-3))
param_scheduler = [
    dict(type='LinearLR', begin=0, end=20, start_factor=0.01, by_epoch=False),
    dict(
        type='CosineAnnealingLR',
        begin=20,
        end=120,
        eta_min=1e-5,
        by_epoch=False,
    ),
]
train_cfg = dict(
    _delete_=True,
    type='SafeIterBasedTrainLoop',
    max_iters=120,
    val_interval=40,
)
default_hooks = dict(
    logger=dict(interval=20),
    checkpoint=dict(
        by_epoch=False, interval=40, max_keep_ckpts=2, save_best='pck/PCK'
    ),
)
log_processor = dict(by_epoch=False)
env_cfg = dict(dist_cfg=dict(backend='gloo'))
randomness = dict(seed=0)
