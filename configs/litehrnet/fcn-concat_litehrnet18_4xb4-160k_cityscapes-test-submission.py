# Cityscapes test-server submission: predict the `test` split and write
# `*_leftImg8bit.png` files with Cityscapes label ids (not train ids) into
# `output_dir`, ready to zip and upload. Nothing is evaluated locally.
#   python tools/test.py THIS_CONFIG CHECKPOINT
#   cd work_dirs/format_results && zip -r ../submission.zip .
_base_ = './fcn-concat_litehrnet18_4xb4-160k_cityscapes-512x1024.py'
test_dataloader = dict(
    dataset=dict(
        type='CityscapesDataset',  # test labels are not public
        data_prefix=dict(
            img_path='leftImg8bit/test', seg_map_path='gtFine/test'
        ),
        pipeline=[
            dict(type='LoadImageFromFile'),
            dict(type='Resize', scale=(2048, 1024), keep_ratio=True),
            dict(type='PackSegInputs'),
        ],
    )
)
test_evaluator = dict(
    _delete_=True,
    type='CityscapesMetric',
    format_only=True,
    keep_results=True,
    output_dir='work_dirs/format_results',
)
