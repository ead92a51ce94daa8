# The 160k Lite-HRNet-18 Cityscapes recipe, with the backbone initialised
# from a COCO pose checkpoint (official Lite-HRNet / mmpose 0.x file, an
# mmpose 1.x file or one of ours: all keep the backbone under `backbone.`).
# Loading is strict: a checkpoint of another arch stops with a ValueError
# listing the mismatched tensors. The decode head starts from scratch.
_base_ = ['./fcn-concat_litehrnet18_4xb4-160k_cityscapes-512x1024.py']
model = dict(
    backbone=dict(
        init_cfg=dict(
            type='Pretrained',
            checkpoint='checkpoints/litehrnet18_coco_256x192.pth',
            prefix='backbone.',
        )
    )
)
