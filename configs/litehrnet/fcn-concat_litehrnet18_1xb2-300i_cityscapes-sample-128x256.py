# Quickstart / CI config: Lite-HRNet-18 + concat head overfitting the one
# bundled Cityscapes frame (256x128) on a CPU in a few minutes. Plain BN
# (one process), whole-frame crops, Adam for a fast fit; the metric is the
# real IoUMetric on the same frame, so mIoU rising well above chance shows
# the whole pipeline learns. Data prepared by the quickstart:
#   cp -r tests/data/cityscapes data/cityscapes_sample
#   python tools/dataset_converters/cityscapes.py data/cityscapes_sample
_base_ = './fcn-concat_litehrnet18_4xb4-160k_cityscapes-512x1024.py'
data_root = 'data/cityscapes_sample/'
crop_size = (128, 256)
norm_cfg = dict(type='BN', requires_grad=True)
model = dict(
    data_preprocessor=dict(size=crop_size),
    backbone=dict(norm_cfg=norm_cfg),
    decode_head=dict(norm_cfg=norm_cfg),
)
train_pipeline = [
    dict(type='LoadImageFromFileChecked'),
    dict(type='LoadAnnotationsChecked'),
    dict(type='CheckSegSample', num_classes=19, ignore_index=255),
    dict(type='RandomFlip', prob=0.5),
    dict(type='PackSegInputs'),
]
test_pipeline = [
    dict(type='LoadImageFromFileChecked'),
    dict(type='LoadAnnotationsChecked'),
    dict(type='PackSegInputs'),
]
frame = dict(
    data_root=data_root,
    data_prefix=dict(img_path='leftImg8bit/val', seg_map_path='gtFine/val'),
)
train_dataloader = dict(
    batch_size=2,
    num_workers=0,
    persistent_workers=False,
    dataset=dict(pipeline=train_pipeline, **frame),
)
val_dataloader = dict(
    num_workers=0,
    persistent_workers=False,
    dataset=dict(pipeline=test_pipeline, **frame),
)
test_dataloader = val_dataloader
optim_wrapper = dict(
    _delete_=True,
    type='OptimWrapper',
    optimizer=dict(type='AdamW', lr=0.005, weight_decay=0.0001),
    # Adam moves every weight by about lr per step, so a layer's outputs move
    # in proportion to its fan-in: the 32-channel head's classifier would
    # learn 10x slower than the 320-channel head's. x10 for the head keeps
    # the quick fit (100 iterations: mIoU 42 -> 66 on the frame).
    paramwise_cfg=dict(custom_keys=dict(decode_head=dict(lr_mult=10.0))),
    clip_grad=None,  # to clip: dict(max_norm=35, norm_type=2)
)
param_scheduler = [
    dict(type='PolyLR', eta_min=1e-5, power=0.9, end=300, by_epoch=False)
]
train_cfg = dict(max_iters=300, val_interval=100)
default_hooks = dict(
    logger=dict(interval=20), checkpoint=dict(interval=100, max_keep_ckpts=2)
)
env_cfg = dict(cudnn_benchmark=False, dist_cfg=dict(backend='gloo'))
randomness = dict(seed=0)
