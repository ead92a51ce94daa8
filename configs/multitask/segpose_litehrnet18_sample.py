# Joint Cityscapes segmentation + COCO top-down pose on ONE Lite-HRNet-18
# core (https://arxiv.org/abs/2104.06403), trained by stock tools/train.py.
# Sample / CI config: the bundled Cityscapes frame (converted with
# tools/dataset_converters/cityscapes.py) and the 4 bundled COCO images, on
# a CPU. Each step is one task (TaskBatchSampler, seg:pose = 1:1, seg batch
# 2 of 128x256 frames, pose batch 12 of 256x192 crops); validation walks
# both val sets and reports mIoU and coco/AP in one run (TaskFilteredMetric).
# Point it at the data with --cfg-options (paths are resolved at parse
# time, so override the dataset keys, not `seg_root`):
#   {train,val,test}_dataloader.dataset.datasets.seg.data_root=DIR
#   {train,val,test}_dataloader.dataset.datasets.pose.data_root=DIR
#   val_evaluator.1.metric.ann_file=DIR/test_coco.json (test_evaluator too)
# Multi-GPU: every rank runs the same task in a step; add
#   model_wrapper_cfg=dict(type='MMDistributedDataParallel',
#                          find_unused_parameters=True)
# since the other task's head gets no gradient in a step.
_base_ = [
    'mmseg::_base_/default_runtime.py',
    # the segmentation model (backbone + decode head) and the pose codec,
    # referenced below rather than restated
    '../_base_/models/fcn-concat_litehrnet18.py',
    '../_base_/codecs/msra-heatmap_256x192.py',
]
custom_imports = dict(imports=['litehrnet_seg'], allow_failed_imports=False)

seg_root = 'data/cityscapes_sample/'
coco_root = 'tests/data/coco/'
crop_size = (128, 256)
norm_cfg = dict(type='BN', requires_grad=True)  # one process: plain BN

model = dict(
    _delete_=True,  # not an EncoderDecoder: only the parts below are used
    type='SegPoseMultiTaskModel',
    data_preprocessor=dict(
        type='MultiTaskDataPreprocessor',
        preprocessors=dict(
            seg=dict(_base_.model.data_preprocessor, size=crop_size),
            pose=dict(
                type='ImgDataPreprocessor',
                mean=_base_.model.data_preprocessor.mean,
                std=_base_.model.data_preprocessor.std,
                bgr_to_rgb=True,
            ),
        ),
    ),
    # The seg model's backbone and decode head, with plain BN.
    backbone=dict(_base_.model.backbone, norm_cfg=norm_cfg),
    decode_head=dict(_base_.model.decode_head, norm_cfg=norm_cfg),
    head=dict(
        type='HeatmapHead',
        in_channels=40,
        out_channels=17,
        loss=dict(type='KeypointMSELoss', use_target_weight=True),
        decoder=_base_.codec,
    ),
    # The heatmap MSE is ~1e-3 of the cross-entropy: with one Adam over
    # the shared backbone, weight 1 leaves pose gradients negligible next
    # to seg's (pose loss 0.0036 -> 0.0035 in 30 pose steps; with 1000:
    # 0.0036 -> 0.0013, seg unchanged). Logged losses are weighted.
    loss_weights=dict(seg=1.0, pose=1000.0),
    train_cfg=dict(),
    test_cfg=dict(
        seg=dict(mode='whole'),
        pose=dict(flip_test=True, shift_heatmap=True),
    ),
)

# ---- data ---------------------------------------------------------------
seg_train_pipeline = [
    dict(type='LoadImageFromFileChecked'),
    dict(type='LoadAnnotationsChecked'),
    dict(type='CheckSegSample', num_classes=19, ignore_index=255),
    dict(type='RandomFlip', prob=0.5),
    dict(type='PackSegInputs'),
]
seg_test_pipeline = [
    dict(type='LoadImageFromFileChecked'),
    dict(type='LoadAnnotationsChecked'),
    dict(type='PackSegInputs'),
]
pose_train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='GetBBoxCenterScale', padding=1.25),
    dict(type='TopdownAffine', input_size=_base_.codec.input_size),
    dict(type='GenerateHeatmapTarget', encoder=_base_.codec),
    dict(type='PackPoseInputs'),
]
pose_test_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='GetBBoxCenterScale', padding=1.25),
    dict(type='TopdownAffine', input_size=_base_.codec.input_size),
    dict(type='PackPoseInputs'),
]
seg_frame = dict(
    type='CheckedCityscapesDataset',
    data_root=seg_root,
    data_prefix=dict(img_path='leftImg8bit/val', seg_map_path='gtFine/val'),
)
pose_images = dict(
    type='CocoDataset',
    data_root=coco_root,
    ann_file='test_coco.json',
    data_prefix=dict(img=''),
)
train_dataloader = dict(
    batch_size=2,  # default for tasks missing in batch_sizes
    num_workers=0,
    persistent_workers=False,
    sampler=dict(type='InfiniteSampler', shuffle=True),
    batch_sampler=dict(
        type='TaskBatchSampler',
        batch_sizes=dict(seg=2, pose=12),
        ratio=dict(seg=1, pose=1),
    ),
    collate_fn=dict(type='pseudo_collate'),
    dataset=dict(
        type='MultiTaskDataset',
        datasets=dict(
            seg=dict(**seg_frame, pipeline=seg_train_pipeline),
            pose=dict(**pose_images, pipeline=pose_train_pipeline),
        ),
    ),
)
val_dataloader = dict(
    batch_size=1,
    num_workers=0,
    persistent_workers=False,
    sampler=dict(type='DefaultSampler', shuffle=False),
    batch_sampler=dict(
        type='TaskSequentialBatchSampler', batch_sizes=dict(seg=1, pose=12)
    ),
    collate_fn=dict(type='pseudo_collate'),
    dataset=dict(
        type='MultiTaskDataset',
        datasets=dict(
            seg=dict(**seg_frame, pipeline=seg_test_pipeline),
            pose=dict(
                **pose_images,
                bbox_file=None,
                test_mode=True,
                pipeline=pose_test_pipeline,
            ),
        ),
    ),
)
test_dataloader = val_dataloader
val_evaluator = [
    dict(
        type='TaskFilteredMetric',
        task='seg',
        metric=dict(type='IoUMetric', iou_metrics=['mIoU']),
    ),
    dict(
        type='TaskFilteredMetric',
        task='pose',
        metric=dict(type='CocoMetric', ann_file=coco_root + 'test_coco.json'),
    ),
]
test_evaluator = val_evaluator

# ---- schedule -----------------------------------------------------------
max_iters = 200
optim_wrapper = dict(
    type='OptimWrapper',
    optimizer=dict(type='AdamW', lr=0.005, weight_decay=0.0001),
)
param_scheduler = [
    dict(type='LinearLR', begin=0, end=20, start_factor=0.1, by_epoch=False),
    dict(
        type='PolyLR',
        eta_min=1e-5,
        power=0.9,
        begin=20,
        end=max_iters,
        by_epoch=False,
    ),
]
train_cfg = dict(
    type='IterBasedTrainLoop', max_iters=max_iters, val_interval=100
)
val_cfg = dict(type='ValLoop')
test_cfg = dict(type='TestLoop')
default_hooks = dict(
    timer=dict(type='IterTimerHook'),
    logger=dict(type='LoggerHook', interval=10, log_metric_by_epoch=False),
    param_scheduler=dict(type='ParamSchedulerHook'),
    checkpoint=dict(
        type='CheckpointHook', by_epoch=False, interval=100, max_keep_ckpts=2
    ),
    sampler_seed=dict(type='DistSamplerSeedHook'),
    visualization=dict(type='SegVisualizationHook'),
)
log_processor = dict(by_epoch=False, window_size=10)
env_cfg = dict(cudnn_benchmark=False, dist_cfg=dict(backend='gloo'))
randomness = dict(seed=0)
