# Lite-HRNet-18 + HRNetV2 concat head, Cityscapes 512x1024, 160k iterations,
# total batch 16 (4 GPUs x 4), SGD lr 0.01 poly, SyncBN, trained from
# scratch (no ImageNet pretraining), as in the Lite-HRNet paper.
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
    checkpoint=dict(
        by_epoch=False,
        interval=16000,
        max_keep_ckpts=3,
        save_best='mIoU',
        rule='greater',
    )
)
# For automatic LR scaling when the total batch differs (--cfg-options
# auto_scale_lr.enable=True).
auto_scale_lr = dict(enable=False, base_batch_size=16)
