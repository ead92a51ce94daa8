# Lite-HRNet-30 at 384x288. Paper: 70.4 AP (mmpose: 70.0).
_base_ = './topdown-heatmap_litehrnet18_8xb32-210e_coco-384x288.py'
model = dict(backbone=dict(arch='30'))
