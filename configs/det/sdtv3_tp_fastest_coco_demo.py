# The demo detector of sdtv3_coco_demo.py with every speed option of token
# early stopping at 56 % retention (see sdtv3_tp_fastest_coco.py), trained
# with it from the start on the mini set:
#   python tools/train.py configs/det/sdtv3_tp_fastest_coco_demo.py
_base_ = ['./sdtv3_coco_demo.py', '../_base_/pruning/tp_fastest_56.py']

# The demo images are about 3x smaller than the full recipe's, so its conv
# stages run 4 x 4 tiles: at tile 8, stage 2 of a demo image holds only ~24
# tiles and the realised retention moves far from 56 %.
model = dict(backbone=dict(pruning=dict(_base_.pruning, conv_tile=4)))
