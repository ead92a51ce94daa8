# Lite-HRNet-30 variant of the 80k recipe.
_base_ = './fcn-concat_litehrnet18_4xb4-80k_cityscapes-512x1024.py'
model = dict(backbone=dict(arch='30'))
