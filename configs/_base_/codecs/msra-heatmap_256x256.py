# The MSRA heatmap codec of the MPII 256x256 recipes, declared once:
# 256x256 input crops, 64x64 heatmaps (stride 4), Gaussian sigma 2. Used
# like msra-heatmap_256x192.py.
codec = dict(
    input_size=(256, 256), heatmap_size=(64, 64), sigma=2, unbiased=False
)
