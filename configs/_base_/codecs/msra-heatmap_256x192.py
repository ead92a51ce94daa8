# The MSRA heatmap codec of the 256x192 top-down recipes, declared once:
# 192x256 (w x h) input crops, 48x64 heatmaps (stride 4), Gaussian sigma 2,
# argmax + quarter-pixel decoding (unbiased=True would decode with DARK).
# The training pipeline encodes targets with it
# (`GenerateHeatmapTarget(encoder=codec)`, in the dataset base) and the
# model's HeatmapHead decodes with it (`decoder=codec`, set where the model
# and the dataset meet: the top-level configs).
codec = dict(
    input_size=(192, 256), heatmap_size=(48, 64), sigma=2, unbiased=False
)
