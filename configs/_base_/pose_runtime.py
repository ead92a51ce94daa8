# Runtime for epoch-based top-down pose training (mmpose 1.x style), in
# mmseg's registry scope so tools/train.py and tools/test.py run it as is.
custom_imports = dict(imports=['litehrnet_seg'], allow_failed_imports=False)
default_scope = 'mmseg'
default_hooks = dict(
    timer=dict(type='IterTimerHook'),
    logger=dict(type='LoggerHook', interval=50),
    param_scheduler=dict(type='ParamSchedulerHook'),
    # Atomic checkpoint writes (the 'local_atomic' file backend); --resume
    # skips a corrupt newest checkpoint. See docs/robust_training.md.
    checkpoint=dict(
        type='CheckpointHook',
        backend_args=dict(backend='local_atomic'),
        interval=10,
        max_keep_ckpts=3,
        save_best='coco/AP',
        rule='greater',
    ),
    sampler_seed=dict(type='DistSamplerSeedHook'),
    visualization=dict(type='PoseVisualizationHook', draw=False),
    # NaN/Inf loss: 'raise' stops without checkpointing the diverged state;
    # 'skip' also needs optim_wrapper.type='NonFiniteGuardOptimWrapper'.
    non_finite=dict(type='NonFiniteLossHook', policy='raise'),
)
env_cfg = dict(
    cudnn_benchmark=False,
    mp_cfg=dict(mp_start_method='fork', opencv_num_threads=0),
    dist_cfg=dict(backend='nccl'),
)
vis_backends = [dict(type='LocalVisBackend')]
visualizer = dict(
    type='Visualizer', vis_backends=vis_backends, name='visualizer'
)
log_processor = dict(type='LogProcessor', window_size=50, by_epoch=True)
log_level = 'INFO'
load_from = None
resume = False
