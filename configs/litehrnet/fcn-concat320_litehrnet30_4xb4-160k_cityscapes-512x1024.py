# Lite-HRNet-30 with the 320-channel HRNetV2 head of the unmerged mmseg
# port, which measured 73.81 mIoU with it (160k iterations). 6.61G FLOPs
# in the paper's convention (the paper: 3.02G), 1.87M params; the default
# L30 config (32 mixing channels): 3.35G, 1.77M.
_base_ = './fcn-concat320_litehrnet18_4xb4-160k_cityscapes-512x1024.py'
model = dict(backbone=dict(arch='30'))
