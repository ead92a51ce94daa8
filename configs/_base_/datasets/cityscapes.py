# Cityscapes 512x1024 crops (mmseg's recipe) with checked data: the dataset
# verifies every image has its label, the *Checked loaders name files they
# cannot decode, CheckSegSample verifies label values and image/label sizes.
# Bad files fail with their names instead of an obscure error at hour 20.
_base_ = 'mmseg::_base_/datasets/cityscapes.py'
dataset_type = 'CheckedCityscapesDataset'
crop_size = (512, 1024)
train_pipeline = [
    dict(type='LoadImageFromFileChecked'),
    dict(type='LoadAnnotationsChecked'),
    dict(type='CheckSegSample', num_classes=19, ignore_index=255),
    dict(
        type='RandomResize',
        scale=(2048, 1024),
        ratio_range=(0.5, 2.0),
        keep_ratio=True,
    ),
    dict(type='RandomCrop', crop_size=crop_size, cat_max_ratio=0.75),
    dict(type='RandomFlip', prob=0.5),
    dict(type='PhotoMetricDistortion'),
    dict(type='PackSegInputs'),
]
test_pipeline = [
    dict(type='LoadImageFromFileChecked'),
    dict(type='Resize', scale=(2048, 1024), keep_ratio=True),
    # Labels are loaded after Resize: metrics use the original resolution.
    dict(type='LoadAnnotationsChecked'),
    dict(type='PackSegInputs'),
]
train_dataloader = dict(
    batch_size=4,
    dataset=dict(
        type=dataset_type,
        pipeline=train_pipeline,
        # What a bad sample (image without label, unreadable file, label ids
        # outside 0..18/255, size mismatch) does during training: 'raise'
        # stops with an error naming the file; 'skip' logs it, counts it
        # and trains on another sample. Validation/test always raise. Check
        # the folder beforehand with tools/misc/check_dataset.py.
        bad_sample_policy='raise',
    ),
)
# Logs how many bad samples were skipped (bad_sample_policy='skip').
custom_hooks = [dict(type='BadSampleReportHook')]
val_dataloader = dict(dataset=dict(type=dataset_type, pipeline=test_pipeline))
test_dataloader = val_dataloader
