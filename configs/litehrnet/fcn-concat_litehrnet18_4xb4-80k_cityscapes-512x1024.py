# The 160k recipe with an 80k schedule.
_base_ = './fcn-concat_litehrnet18_4xb4-160k_cityscapes-512x1024.py'
param_scheduler = [
    dict(
        type='PolyLR',
        eta_min=1e-4,
        power=0.9,
        begin=0,
        end=80000,
        by_epoch=False,
    )
]
train_cfg = dict(max_iters=80000, val_interval=8000)
default_hooks = dict(checkpoint=dict(interval=8000))
