# Lite-HRNet-18 + a light HRNetV2-style concatenation head, at the paper's
# cost. The head reads the four IterativeHead outputs (40, 40, 80, 160
# channels at strides 4, 8, 16, 32; the backbone's state-dict keys stay
# identical to the official pose checkpoints'), upsamples them to stride 4,
# concatenates, mixes to 32 channels with a 1x1 conv + BN + ReLU and
# classifies with a 1x1 conv.
#
# Why 32 mixing channels, computed before the upsampling
# (ProjectFirstConcatHead): at 512x1024 this model costs 2.17G FLOPs in the
# paper's convention (1.95G published; backbone + IterativeHead alone are
# 2.10G) and 1.14M params (paper 1.1M), against 5.44G / 1.24M for the
# 320-channel head (`fcn-concat320_*` configs). It is the cheapest head that
# keeps the HRNetV2 head's non-linear mixing: no mixing (FCNHead,
# num_convs=0) costs more (2.28G: a 320 -> 19 classifier at stride 4), 64
# channels exceed the paper's parameter budget (1.152M), and the same
# 32-channel mixing after the upsampling (mmseg FCNHead, channels=32) is the
# same function but 2.43G and slower on CPUs. ProjectFirstConcatHead
# equals FCNHead(num_convs=1, kernel_size=1, concat_input=False,
# channels=32) exactly (a 1x1 conv commutes with bilinear upsampling). No
# measurement shows that the 320-channel mixing helps accuracy. Measurements:
# README "Results" and docs/flops.md.
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
        type='ProjectFirstConcatHead',
        in_channels=[40, 40, 80, 160],
        in_index=(0, 1, 2, 3),
        channels=32,
        input_transform='resize_concat',
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
