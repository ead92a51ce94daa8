# The official Lite-HRNet-18 COCO 256x192 recipe, with the backbone
# initialised from a Cityscapes segmentation checkpoint (the seg model keeps
# the IterativeHead, so its backbone keys are the pose layout). Loading is
# strict; the heatmap head starts from scratch. Any of our seg checkpoints
# works, or a file written by tools/checkpoint/extract_backbone.py with
# --keep-prefix (without it, drop `prefix`).
_base_ = ['./topdown-heatmap_litehrnet18_8xb64-210e_coco-256x192.py']
model = dict(
    backbone=dict(
        init_cfg=dict(
            type='Pretrained',
            checkpoint='checkpoints/'
            'fcn-concat_litehrnet18_4xb4-160k_cityscapes-512x1024.pth',
            prefix='backbone.',
        )
    )
)
