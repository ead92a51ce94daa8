# Lite-HRNet-30 variant. Paper: 67.2 AP (mmpose: 67.6).
_base_ = './topdown-heatmap_litehrnet18_8xb64-210e_coco-256x192.py'
model = dict(backbone=dict(arch='30'))
