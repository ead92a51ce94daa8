# Quickstart / CI config for pose: Lite-HRNet-18 + heatmap head overfitting
# the 12 keypoint-annotated people of the 4 bundled COCO val images
# (tests/data/coco) on a CPU, GT boxes for training and validation, scored
# with the real COCO OKS AP (pycocotools). Flip/half-body off so the fit is
# fast; Adam with a short warmup.
_base_ = './topdown-heatmap_litehrnet18_8xb64-210e_coco-256x192.py'
data_root = 'tests/data/coco/'
train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='GetBBoxCenterScale', padding=1.25),
    dict(type='TopdownAffine', input_size=_base_.codec.input_size),
    dict(type='GenerateHeatmapTarget', encoder=_base_.codec),
    dict(type='PackPoseInputs'),
]
train_dataloader = dict(
    batch_size=12,
    num_workers=0,
    persistent_workers=False,
    sampler=dict(type='InfiniteSampler', shuffle=True),
    dataset=dict(
        data_root=data_root,
        ann_file='test_coco.json',
        data_prefix=dict(img=''),
        pipeline=train_pipeline,
    ),
)
val_dataloader = dict(
    batch_size=12,
    num_workers=0,
    persistent_workers=False,
    dataset=dict(
        data_root=data_root,
        ann_file='test_coco.json',
        bbox_file=None,
        data_prefix=dict(img=''),
    ),
)
test_dataloader = val_dataloader
val_evaluator = dict(ann_file=data_root + 'test_coco.json')
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
    checkpoint=dict(by_epoch=False, interval=40, max_keep_ckpts=2),
)
log_processor = dict(by_epoch=False)
env_cfg = dict(dist_cfg=dict(backend='gloo'))
randomness = dict(seed=0)
