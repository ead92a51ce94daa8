# Lite-HRNet's official pose schedule: Adam lr 2e-3 (total batch 512),
# linear warmup over 500 iterations, 210 epochs, x0.1 at epochs 170 and 200.
# No gradient clipping (as in Lite-HRNet). To clip, set e.g.
# clip_grad=dict(_delete_=True, max_norm=35, norm_type=2) in a child config
# (mmengine's OptimWrapper option; `_delete_` replaces the None).
optim_wrapper = dict(optimizer=dict(type='Adam', lr=2e-3), clip_grad=None)
param_scheduler = [
    dict(
        type='LinearLR', begin=0, end=500, start_factor=0.001, by_epoch=False
    ),
    dict(
        type='MultiStepLR',
        begin=0,
        end=210,
        milestones=[170, 200],
        gamma=0.1,
        by_epoch=True,
    ),
]
# Exact resume (random state, mid-epoch position) and, on SIGTERM, a
# checkpoint after the current iteration (litehrnet_seg.engine.train_loops).
train_cfg = dict(
    type='SafeEpochBasedTrainLoop', max_epochs=210, val_interval=10
)
val_cfg = dict()
test_cfg = dict()
auto_scale_lr = dict(enable=False, base_batch_size=512)
