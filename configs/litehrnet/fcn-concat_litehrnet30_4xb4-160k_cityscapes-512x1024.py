# Lite-HRNet-30 variant of the 160k recipe (same head widths: the branch
# widths of L18 and L30 are identical, L30 has more modules).
_base_ = './fcn-concat_litehrnet18_4xb4-160k_cityscapes-512x1024.py'
model = dict(backbone=dict(arch='30'))
