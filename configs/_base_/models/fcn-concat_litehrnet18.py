# Lite-HRNet-18 + HRNetV2-style concatenation head (mmseg's FCNHead with
# `resize_concat`): every branch is upsampled to the stride-4 resolution,
# concatenated, then 1x1 conv + BN + ReLU and a 1x1 classifier.
# The head reads the four IterativeHead outputs (40, 40, 80, 160 channels at
# strides 4, 8, 16, 32), which keeps the backbone's state-dict keys identical
# to the official pose checkpoints'.
custom_imports = dict(imports=['litehrnet_seg'], allow_failed_imports=False)
norm_cfg = dict(type='SyncBN', requires_grad=True)
data_preprocessor = dict(
    type='SegDataPreProcessor',
    mean=[123.675, 116.28, 103.53],
    std=[58.395, 57.12, 57.375],
    bgr_to_rgb=True,
    pad_val=0,
    seg_pad_val=255,
)
model = dict(
    type='EncoderDecoder',
    data_preprocessor=data_preprocessor,
    pretrained=None,
    backbone=dict(
        type='LiteHRNet',
        arch='18',
        with_head=True,
        out_indices=(0, 1, 2, 3),
        norm_cfg=norm_cfg,
        norm_eval=False,
    ),
    decode_head=dict(
        type='FCNHead',
        in_channels=[40, 40, 80, 160],
        in_index=(0, 1, 2, 3),
        channels=320,
        input_transform='resize_concat',
        kernel_size=1,
        num_convs=1,
        concat_input=False,
        dropout_ratio=-1,
        num_classes=19,
        norm_cfg=norm_cfg,
        align_corners=False,
        loss_decode=dict(
            type='CrossEntropyLoss', use_sigmoid=False, loss_weight=1.0
        ),
    ),
    train_cfg=dict(),
    test_cfg=dict(mode='whole'),
)
