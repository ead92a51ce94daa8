# Lite-HRNet-18 + light HRNetV2-style concat head (32 mixing channels,
# ProjectFirstConcatHead: 2.17G FLOPs in the paper's convention, 1.14M
# params; why this head: ../_base_/models/fcn-concat_litehrnet18.py),
# Cityscapes 512x1024, 160k iterations, total batch 16 (4 GPUs x 4), SGD
# lr 0.01 poly, SyncBN, trained from scratch (no ImageNet pretraining), as
# in the Lite-HRNet paper. The 320-channel head of the unmerged mmseg port:
# fcn-concat320_litehrnet18_4xb4-160k_cityscapes-512x1024.py.
_base_ = [
    '../_base_/models/fcn-concat_litehrnet18.py',
    '../_base_/datasets/cityscapes.py',
    'mmseg::_base_/default_runtime.py',
    'mmseg::_base_/schedules/schedule_160k.py',
]
crop_size = (512, 1024)
data_preprocessor = dict(size=crop_size)
model = dict(data_preprocessor=data_preprocessor)
train_dataloader = dict(batch_size=4, num_workers=4)
default_hooks = dict(
    # Atomic checkpoint writes (the 'local_atomic' file backend); --resume
    # skips a corrupt newest checkpoint. See docs/robust_training.md.
    checkpoint=dict(
        type='CheckpointHook',
        backend_args=dict(backend='local_atomic'),
        by_epoch=False,
        interval=16000,
        max_keep_ckpts=3,
        save_best='mIoU',
        rule='greater',
    ),
    # NaN/Inf loss: 'raise' stops without checkpointing the diverged state;
    # 'skip' also needs optim_wrapper.type='NonFiniteGuardOptimWrapper'.
    non_finite=dict(type='NonFiniteLossHook', policy='raise'),
)
# --resume restores the random state too (same losses as without the
# interruption under randomness.deterministic=True); SIGTERM (Slurm
# pre-emption) saves a checkpoint after the current iteration, then exits
# (train_cfg.stop_signals=[] disables it).
train_cfg = dict(type='SafeIterBasedTrainLoop')
# No gradient clipping, as in the paper (mmseg's schedule default). To clip
# (mmengine's clip_grad; `_delete_` replaces the None):
#   --cfg-options optim_wrapper.clip_grad._delete_=True
#   optim_wrapper.clip_grad.max_norm=35 optim_wrapper.clip_grad.norm_type=2
optim_wrapper = dict(clip_grad=None)
# For automatic LR scaling when the total batch differs (--cfg-options
# auto_scale_lr.enable=True).
auto_scale_lr = dict(enable=False, base_batch_size=16)
# Speed options (see docs/benchmarks.md): `--amp` for mixed precision,
# env_cfg.cudnn_benchmark (on, from mmseg's default runtime), and
# torch.compile of the train step through mmengine: `--cfg-options
# compile=True` (or a dict of torch.compile options). Off by default:
# compiling costs minutes up front (and a C++ compiler on CPUs).
compile = False
