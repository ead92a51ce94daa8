# Top-down heatmap pose model on the shared Lite-HRNet core: the stride-4
# IterativeHead output (40 channels) -> 1x1 conv -> K heatmaps. The head's
# decoder is the dataset's codec: top-level configs set
# `model = dict(head=dict(decoder=_base_.codec))` (the codec is declared
# once, in ../codecs/, and the dataset bases inherit it).
model = dict(
    type='TopdownPoseEstimator',
    data_preprocessor=dict(
        type='ImgDataPreprocessor',
        mean=[123.675, 116.28, 103.53],
        std=[58.395, 57.12, 57.375],
        bgr_to_rgb=True,
    ),
    backbone=dict(
        type='LiteHRNet', arch='18', with_head=True, out_indices=(0,)
    ),
    head=dict(
        type='HeatmapHead',
        in_channels=40,
        out_channels=17,
        loss=dict(type='KeypointMSELoss', use_target_weight=True),
    ),
    test_cfg=dict(flip_test=True, shift_heatmap=True),
)
