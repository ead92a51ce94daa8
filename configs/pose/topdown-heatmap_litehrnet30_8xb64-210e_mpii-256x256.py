# Lite-HRNet-30 on MPII. Paper: 87.0 (mmpose: 86.9).
_base_ = './topdown-heatmap_litehrnet18_8xb64-210e_mpii-256x256.py'
model = dict(backbone=dict(arch='30'))
