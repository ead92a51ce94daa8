# Lite-HRNet-18 with the full-width HRNetV2 head of the unmerged mmseg port
# (PR #720): the four IterativeHead outputs upsampled to stride 4 and
# concatenated (320 channels), 1x1 conv 320 -> 320 + BN + ReLU, 1x1
# classifier (mmseg's FCNHead). The port measured 71.81 mIoU (Cityscapes
# val, 160k iterations, batch 16) with exactly this head. It costs 5.44G
# FLOPs in the paper's convention (the paper: 1.95G) and 1.24M params:
# the mixing conv at stride 4 alone costs more than the backbone. The
# default (fcn-concat_litehrnet18_4xb4-160k_cityscapes-512x1024.py) mixes
# to 32 channels instead: 2.17G, 1.14M.
_base_ = './fcn-concat_litehrnet18_4xb4-160k_cityscapes-512x1024.py'
model = dict(
    decode_head=dict(
        type='FCNHead',
        channels=320,
        num_convs=1,
        kernel_size=1,
        concat_input=False,
    )
)
