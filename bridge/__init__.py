"""The exchange with the photographer's tools: the focusdrop command, the hot folder, the Adobe scripts'
installer, a cluster.

FocusDrop checks its own cap (the max_megapixels setting) on every frame's header before decoding, so the
processes that run it lift Pillow's lower, process-wide one here, once.
"""
from PIL import Image

Image.MAX_IMAGE_PIXELS = None
