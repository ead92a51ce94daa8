# COCO keypoints, top-down: GT boxes for training, detector boxes (AP 56.4
# on val, as in the paper) for validation/test. The crop size and heatmap
# targets come from the codec (`codec`, inherited); the pose model's
# HeatmapHead decodes with the same one.
_base_ = ['../codecs/msra-heatmap_256x192.py']
dataset_type = 'CocoDataset'
data_root = 'data/coco/'
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
        ann_file='annotations/person_keypoints_train2017.json',
        data_prefix=dict(img='train2017/'),
        pipeline=train_pipeline,
        # What a bad sample (malformed keypoints/bbox, NaN, unreadable or
        # missing image) does during training: 'raise' stops with an error
        # naming the file (and annotation id/field); 'skip' logs it, counts
        # it and uses another sample. Validation/test always raise. Check
        # the folder beforehand with tools/misc/check_dataset.py.
        bad_sample_policy='raise',
    ),
)
# Logs how many bad samples were skipped (bad_sample_policy='skip').
custom_hooks = [dict(type='BadSampleReportHook')]
val_dataloader = dict(
    batch_size=32,
    num_workers=4,
    persistent_workers=True,
    drop_last=False,
    sampler=dict(type='DefaultSampler', shuffle=False, round_up=False),
    dataset=dict(
        type=dataset_type,
        data_root=data_root,
        ann_file='annotations/person_keypoints_val2017.json',
        bbox_file=data_root + 'person_detection_results/'
        'COCO_val2017_detections_AP_H_56_person.json',
        data_prefix=dict(img='val2017/'),
        test_mode=True,
        pipeline=val_pipeline,
    ),
)
test_dataloader = val_dataloader
val_evaluator = dict(
    type='CocoMetric',
    ann_file=data_root + 'annotations/person_keypoints_val2017.json',
)
test_evaluator = val_evaluator
